package pipeline

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/dialog"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// Services are the long-lived parts that outlive every Pipeline: the
// location store, the sockets, and whatever stages share through Shared
// (call trackers, open log files). A Pipeline borrows them at build time.
type Services struct {
	// Location keeps registrations.
	Location location.Store
	// Dialogs keeps the dialogs the proxy record-routed, so that in-dialog
	// requests are relayed only between their ends.
	Dialogs dialog.Store
	// Log is the process logger.
	Log *slog.Logger
	// Sockets are the addresses the proxy listens on (for `validate`, the
	// ones the config names).
	Sockets []Socket
	// LocalAddrs are this host's interface addresses.
	LocalAddrs []netip.Addr
	// Metrics are the Prometheus collectors; nil counts nothing.
	Metrics *metrics.Metrics
	// DialogKey signs the Record-Routes the proxy writes (see DialogToken).
	// It must outlive a restart, or the dialogs in progress lose their
	// in-dialog requests; the binary keeps it in a file.
	DialogKey []byte
	// Checking is true when the pipeline is built only to be checked
	// (`switchboard validate`): stages must change nothing outside the
	// process, such as creating the files they would write.
	Checking bool
	// Clock is the clock stages read through Now; nil is time.Now. Tests
	// set it (stagetest.WithTime) to run a stage at the times they choose.
	Clock func() time.Time

	mu     sync.Mutex
	shared map[string]any
	order  []string
}

// Now returns the time by Clock, or time.Now without one.
func (s *Services) Now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// Shared returns the service stored under key, creating it with create on
// first use. Stages use it for state that must outlive a reload: the same
// key returns the same value to the stage of every later pipeline. A value
// that implements io.Closer is closed by Close.
func (s *Services) Shared(key string, create func() (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.shared[key]; ok {
		return v, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	if s.shared == nil {
		s.shared = map[string]any{}
	}
	s.shared[key] = v
	s.order = append(s.order, key)
	return v, nil
}

// Each calls fn for every shared service, in creation order.
func (s *Services) Each(fn func(key string, v any)) {
	s.mu.Lock()
	keys := append([]string(nil), s.order...)
	vals := make([]any, len(keys))
	for i, k := range keys {
		vals[i] = s.shared[k]
	}
	s.mu.Unlock()
	for i, k := range keys {
		fn(k, vals[i])
	}
}

// Close closes every shared service that is an io.Closer, newest first,
// and the location store.
func (s *Services) Close() error {
	s.mu.Lock()
	keys := s.order
	shared := s.shared
	s.order, s.shared = nil, nil
	s.mu.Unlock()
	var errs []error
	for i := len(keys) - 1; i >= 0; i-- {
		if c, ok := shared[keys[i]].(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	if s.Location != nil {
		errs = append(errs, s.Location.Close())
	}
	if s.Dialogs != nil {
		errs = append(errs, s.Dialogs.Close())
	}
	return errors.Join(errs...)
}

// CallInfo describes a call in progress, for the admin API.
type CallInfo struct {
	CallID   string    `json:"call_id"`
	Caller   string    `json:"caller"`
	Callee   string    `json:"callee"`
	State    string    `json:"state"`
	Start    time.Time `json:"start"`
	Answered time.Time `json:"answered,omitzero"`
}

// CallLister is implemented by shared services that track calls (the
// calllog stage's tracker); the admin API and the active-calls gauge read
// every one.
type CallLister interface {
	Calls() []CallInfo
}

// Calls returns the calls in progress of every shared CallLister.
func (s *Services) Calls() []CallInfo {
	var out []CallInfo
	s.Each(func(_ string, v any) {
		if l, ok := v.(CallLister); ok {
			out = append(out, l.Calls()...)
		}
	})
	return out
}
