package uac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// Timing of outbound registrations.
const (
	// refreshMargin is how long before the granted expiry a registration
	// is renewed; a grant of twice that or less is renewed half-way.
	refreshMargin = 30 * time.Second
	// maxRetry caps the backoff after failures.
	maxRetry = 10 * time.Minute
	// unregisterTimeout bounds the REGISTER with Expires: 0 of Close.
	unregisterTimeout = 5 * time.Second
)

// RegisterSettings say how to register to a provider.
type RegisterSettings struct {
	// Registrar is the Request-URI of the REGISTER; AOR is its To and
	// From, Contact where the provider sends calls for it.
	Registrar, AOR, Contact sip.Uri
	// Expires is the registration time asked for.
	Expires time.Duration
	// Retry is the wait after a failure, doubled at each failure in a
	// row up to ten minutes.
	Retry time.Duration
	// Credentials answer the registrar's 401 or 407 (nil: none).
	Credentials pipeline.Credentials
}

// Key names a registration: its registrar, AOR and Contact. Settings
// that keep the key update the running registration instead of starting
// another (a reload).
func (s RegisterSettings) Key() string {
	return s.Registrar.String() + "|" + s.AOR.String() + "|" + s.Contact.String()
}

// Registration keeps one outbound registration refreshed, from
// NewRegistration until Close, which unregisters it (Expires: 0). It is a
// pipeline.RegistrationLister.
type Registration struct {
	sender pipeline.Sender
	log    *slog.Logger
	callID string
	tag    string

	mu   sync.Mutex
	set  RegisterSettings
	cseq uint32
	info pipeline.RegistrationInfo

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ pipeline.RegistrationLister = (*Registration)(nil)

// NewRegistration starts registering by set through sender.
func NewRegistration(sender pipeline.Sender, log *slog.Logger, set RegisterSettings) *Registration {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registration{
		sender: sender, log: log, callID: randomHex(16), tag: randomHex(8),
		set: set, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		info: pipeline.RegistrationInfo{Registrar: set.Registrar.String(), AOR: set.AOR.String(), Contact: set.Contact.String(), State: "registering"},
	}
	go r.run()
	return r
}

// Configure takes the settings of a new config for the same key: the
// next REGISTER uses them.
func (r *Registration) Configure(set RegisterSettings) {
	r.mu.Lock()
	r.set = set
	r.mu.Unlock()
}

// Registrations returns the registration's state.
func (r *Registration) Registrations() []pipeline.RegistrationInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return []pipeline.RegistrationInfo{r.info}
}

// Close stops refreshing and, when registered, unregisters.
func (r *Registration) Close() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.mu.Lock()
		registered := r.info.State == "registered" && time.Now().Before(r.info.Expires)
		r.mu.Unlock()
		if !registered {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
		defer cancel()
		if _, err = r.register(ctx, 0); err != nil {
			err = fmt.Errorf("unregister %s: %w", r.info.AOR, err)
		}
	})
	return err
}

// run registers, then renews before each expiry, or retries with backoff
// after a failure, until Close.
func (r *Registration) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		expires := r.set.Expires
		r.mu.Unlock()
		granted, err := r.register(r.ctx, expires)
		if r.ctx.Err() != nil {
			return
		}
		wait := r.note(granted, err, time.Now())
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// note records the outcome of a REGISTER at now and returns how long to
// wait before the next.
func (r *Registration) note(granted time.Duration, err error, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := &r.info
	info.Updated = now
	if err != nil {
		info.State, info.LastError = "failed", err.Error()
		info.Failures++
		wait := min(r.set.Retry<<min(info.Failures-1, 16), maxRetry)
		if wait <= 0 {
			wait = maxRetry
		}
		info.Refresh = now.Add(wait)
		r.log.Warn("outbound registration failed", "aor", info.AOR, "registrar", info.Registrar, "error", err, "retry_in", wait)
		return wait
	}
	if info.State != "registered" {
		r.log.Info("outbound registration up", "aor", info.AOR, "registrar", info.Registrar, "expires", granted)
	}
	wait := refreshAfter(granted)
	info.State, info.LastError, info.Failures = "registered", "", 0
	info.Expires, info.Refresh = now.Add(granted), now.Add(wait)
	return wait
}

// refreshAfter is when a registration granted for d is renewed.
func refreshAfter(d time.Duration) time.Duration {
	if d <= 2*refreshMargin {
		return d / 2
	}
	return d - refreshMargin
}

// register sends one REGISTER asking for expires, answers a challenge
// once, and follows one 423 (RFC 3261 10.2.8); it returns the time
// granted.
func (r *Registration) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	r.mu.Lock()
	set := r.set
	r.mu.Unlock()
	var auth sip.Header
	challenged, tooBrief := false, false
	for {
		req := r.request(set, expires, auth)
		res, err := r.sender.Send(ctx, req)
		if err != nil {
			return 0, err
		}
		switch code := res.StatusCode; {
		case (code == 401 || code == 407) && !challenged:
			challenged = true
			if set.Credentials == nil {
				return 0, fmt.Errorf("%d %s: no credentials", code, res.Reason)
			}
			var ok bool
			if auth, ok = set.Credentials.Authorize(req, res); !ok {
				return 0, fmt.Errorf("%d %s: no credentials for its realm and algorithms", code, res.Reason)
			}
		case code == 423 && !tooBrief && expires > 0:
			tooBrief = true
			min, err := headerSeconds(res, "Min-Expires")
			if err != nil || min <= expires {
				return 0, fmt.Errorf("423 %s: no usable Min-Expires", res.Reason)
			}
			expires = min
		case res.IsSuccess():
			if expires == 0 {
				return 0, nil
			}
			return r.granted(res, set, expires)
		default:
			return 0, fmt.Errorf("%d %s", code, res.Reason)
		}
	}
}

// request builds a REGISTER of the registration's Call-ID with the next
// CSeq (RFC 3261 10.2).
func (r *Registration) request(set RegisterSettings, expires time.Duration, auth sip.Header) *sip.Request {
	r.mu.Lock()
	r.cseq++
	cseq := r.cseq
	r.mu.Unlock()
	req := sip.NewRequest(sip.REGISTER, *set.Registrar.Clone())
	from := &sip.FromHeader{Address: *set.AOR.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", r.tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: *set.AOR.Clone(), Params: sip.NewParams()})
	callID := sip.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: *set.Contact.Clone(), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	if auth != nil {
		req.AppendHeader(auth)
	}
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	return req
}

// granted is the registration time of a 2xx: the expires of our Contact
// in it, else its Expires header, else what was asked.
func (r *Registration) granted(res *sip.Response, set RegisterSettings, asked time.Duration) (time.Duration, error) {
	d := asked
	if v, err := headerSeconds(res, "Expires"); err == nil {
		d = v
	}
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || !sameContact(&c.Address, &set.Contact) {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				d = time.Duration(n) * time.Second
			}
		}
	}
	if d <= 0 {
		return 0, errors.New("the registrar's 2xx grants no time to our Contact")
	}
	return d, nil
}

// sameContact reports whether a Contact of a 2xx is ours: the same user,
// host and port.
func sameContact(a, b *sip.Uri) bool {
	return a.User == b.User && strings.EqualFold(strings.Trim(a.Host, "[]"), strings.Trim(b.Host, "[]")) && a.Port == b.Port
}

func headerSeconds(res *sip.Response, name string) (time.Duration, error) {
	h := res.GetHeader(name)
	if h == nil {
		return 0, errors.New("no " + name)
	}
	n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a number of seconds", name, h.Value())
	}
	return time.Duration(n) * time.Second, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
