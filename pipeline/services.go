package pipeline

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/dialog"
	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// Services are the long-lived parts that outlive every Pipeline: the
// location store, the dialogs, the sockets, and the values stages share
// between pipelines (call trackers, open log files). A Pipeline borrows
// them at build time.
type Services struct {
	// Location keeps registrations.
	Location location.Store
	// Dialogs keeps the dialogs the proxy record-routed, so that in-dialog
	// requests are relayed only between their ends.
	Dialogs dialog.Store
	// Keepalive pings the bindings of phones behind NAT (the engine's);
	// nil pings none.
	Keepalive *keepalive.Pinger
	// Sender sends the requests the proxy originates (the engine's); nil
	// sends none.
	Sender Sender
	// NodeID names this node among those sharing a location store: the
	// registrar writes it into the UDP bindings from behind NAT that this
	// node holds (location.Binding.Node). Empty: none is written, and
	// after a restart a shared store's bindings are not pinged until
	// they register again.
	NodeID string
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
	// Shared are the values stages share between pipelines, each held by
	// the pipelines whose stages took it with Share.
	Shared Pool
	// Traces are the users traced live, whatever [log] says; nil traces
	// no one.
	Traces *TraceUsers
	// Outbound sends health checks and resolves next hops; the engine sets
	// it, and it is nil where no engine runs (`switchboard validate`).
	Outbound Outbound
}

// Now returns the time by Clock, or time.Now without one.
func (s *Services) Now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// Close destructs the shared values still held, newest first, and closes
// the location store and the dialogs.
func (s *Services) Close() error {
	errs := []error{s.Shared.Close()}
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
	// ForwardedFrom is the user the call was first forwarded from;
	// Forwards its forwards, Attempts the branches it tried so far.
	ForwardedFrom string      `json:"forwarded_from,omitempty"`
	Forwards      []Diversion `json:"forwards,omitempty"`
	Attempts      []Attempt   `json:"attempts,omitempty"`
}

// CallLister is implemented by shared values that track calls (the
// calllog stage's tracker); the admin API and the active-calls gauge read
// every one.
type CallLister interface {
	Calls() []CallInfo
}

// Calls returns the calls in progress of every shared CallLister.
func (s *Services) Calls() []CallInfo {
	var out []CallInfo
	s.Shared.Range(func(_ string, v any) {
		if l, ok := v.(CallLister); ok {
			out = append(out, l.Calls()...)
		}
	})
	return out
}
