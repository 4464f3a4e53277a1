// Package destinations keeps the destinations of destination sets
// (gateways, trunks, PBXs): their health, found by OPTIONS checks and by
// how live requests fare, and the algorithms that pick one for a request.
// A Destination is a value shared between pipelines (pipeline.Share), so
// that a reload that keeps it keeps its state.
package destinations

import (
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// Check says how a destination's health is checked.
type Check struct {
	// Interval between two OPTIONS to each address; 0 checks nothing.
	Interval time.Duration
	// Timeout is how long an OPTIONS waits for its answer.
	Timeout time.Duration
	// DownAfter failures in a row mark an address down; UpAfter
	// successful checks in a row mark it up again.
	DownAfter, UpAfter int
	// AliveCodes are the answers that count as alive; empty: any.
	AliveCodes []int
	// From is the From URI of the OPTIONS.
	From sip.Uri
	// PassiveDown is how long an address that live requests marked down
	// stays down when no checks run to bring it back up.
	PassiveDown time.Duration
	// Resolve is how often a destination named by a DNS name is resolved
	// while no checks run (Interval 0), so that source.set knows its
	// addresses; 0 resolves it only for checks. The resolver's cache keeps
	// an answer for its TTL.
	Resolve time.Duration
}

// alive reports whether an answer to a check counts as alive.
func (c *Check) alive(res *sip.Response) bool {
	if res == nil {
		return false
	}
	if len(c.AliveCodes) == 0 {
		return true
	}
	for _, code := range c.AliveCodes {
		if code == res.StatusCode {
			return true
		}
	}
	return false
}

// Destination is one destination of a set and its health: one state per
// address its host resolves to, so that one dead address does not hide
// the others.
type Destination struct {
	// Set and URI name it; Weight and Priority are the set's settings
	// for it.
	Set      string
	URI      sip.Uri
	Weight   int
	Priority int

	out  pipeline.Outbound
	now  func() time.Time
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
	// inProgress counts the requests sent to it without a final answer.
	inProgress atomic.Int64

	mu      sync.Mutex
	check   Check
	drained bool
	// hops are its addresses, in resolver order; nil until resolved.
	hops     []*hop
	resolved bool
	// resolveErr is why its name did not resolve, at the last try.
	resolveErr string
}

// hop is the health of one address of a destination.
type hop struct {
	target resolve.Target
	up     bool
	// fails and oks count the failures and successful checks in a row.
	fails, oks int
	// until is when an address that said 503 with Retry-After, or that
	// live requests marked down with no checks running, may be used again.
	until time.Time
	// Last check: when, its answer (0 for none) and the error.
	checked  time.Time
	lastCode int
	lastErr  string
}

// New returns a destination whose health is checked through out (nil
// checks nothing). Start begins the checks.
func New(set string, uri sip.Uri, out pipeline.Outbound, now func() time.Time, log *slog.Logger) *Destination {
	if now == nil {
		now = time.Now
	}
	d := &Destination{Set: set, URI: uri, out: out, now: now, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if ip, err := netip.ParseAddr(strings.Trim(uri.Host, "[]")); err == nil {
		// An address needs no resolving: its one hop exists at once.
		tp := transportOf(&uri)
		port := uri.Port
		if port == 0 {
			port = sip.DefaultPort(tp)
		}
		d.hops = []*hop{{target: resolve.Target{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), Transport: tp, Name: ip.String(), Host: ip.String()}, up: true}}
		d.resolved = true
	}
	return d
}

// transportOf is the transport a destination URI asks for.
func transportOf(u *sip.Uri) string {
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		return strings.ToUpper(tp)
	}
	if strings.EqualFold(u.Scheme, "sips") {
		return "TLS"
	}
	return "UDP"
}

// Configure sets the destination's settings, which a reload may change.
func (d *Destination) Configure(weight, priority int, c Check) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Weight, d.Priority, d.check = weight, priority, c
}

// Close stops the checks; a reload that drops the destination closes it.
func (d *Destination) Close() error {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	return nil
}

// Alive reports whether requests may go to the destination: it is not
// drained, and one of its addresses is up (or it is not resolved yet).
func (d *Destination) Alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.aliveLocked(d.now())
}

func (d *Destination) aliveLocked(now time.Time) bool {
	if d.drained {
		return false
	}
	if !d.resolved {
		return true
	}
	for _, h := range d.hops {
		if h.usable(now) {
			return true
		}
	}
	return false
}

func (h *hop) usable(now time.Time) bool { return h.up && !now.Before(h.until) }

// Hops returns the addresses a request to the destination may go to, in
// order: nil for a destination not resolved yet (the engine resolves it)
// or named by an address.
func (d *Destination) Hops() []resolve.Target {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.resolved || d.isAddress() {
		return nil
	}
	now := d.now()
	var out []resolve.Target
	for _, h := range d.hops {
		if h.usable(now) {
			out = append(out, h.target)
		}
	}
	return out
}

// HasAddr reports whether ip is one of the destination's addresses, up
// or down: requests from it come from the destination (source.set).
func (d *Destination) HasAddr(ip netip.Addr) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.hops {
		if h.target.Addr.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

func (d *Destination) isAddress() bool {
	_, err := netip.ParseAddr(strings.Trim(d.URI.Host, "[]"))
	return err == nil
}

// Back returns how long until an address of the destination that said
// 503 with Retry-After can be used again (0 for none).
func (d *Destination) Back() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	var soonest time.Duration
	for _, h := range d.hops {
		if w := h.until.Sub(now); w > 0 && h.up && (soonest == 0 || w < soonest) {
			soonest = w
		}
	}
	return soonest
}

// InProgress returns the requests sent to it without a final answer yet.
func (d *Destination) InProgress() int64 { return d.inProgress.Load() }

// Drain stops (true) or resumes (false) sending requests to the
// destination; its checks go on.
func (d *Destination) Drain(on bool) {
	d.mu.Lock()
	d.drained = on
	d.mu.Unlock()
	d.log.Info("destination drained", "set", d.Set, "uri", d.URI.String(), "drained", on)
}

// Attempted counts a request sent to the destination.
func (d *Destination) Attempted(string) { d.inProgress.Add(1) }

// Answered is how a request sent to hop ended: a 503 with Retry-After
// takes the address out for that long, and no answer or a 503 counts as
// a failure (passive check): DownAfter of them in a row mark it down.
func (d *Destination) Answered(hopAddr string, res *sip.Response) {
	if hopAddr != "" {
		d.inProgress.Add(-1)
	}
	failed := res == nil || res.StatusCode == 503
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for _, h := range d.hops {
		if hopAddr != "" && h.target.Addr.String() != hopAddr {
			continue
		}
		if res != nil && res.StatusCode == 503 {
			if wait := retryAfter(res); wait > 0 {
				h.until = now.Add(wait)
				d.log.Info("destination down for its Retry-After", "set", d.Set, "uri", d.URI.String(), "address", h.target.Addr.String(), "retry_after", wait)
			}
		}
		if !failed {
			h.fails = 0
			continue
		}
		h.fails++
		h.oks = 0
		if h.up && h.fails >= d.check.DownAfter {
			d.markDown(h, "live requests failed", now)
		}
	}
}

// markDown marks h down; with no checks to bring it back, it is retried
// after PassiveDown.
func (d *Destination) markDown(h *hop, why string, now time.Time) {
	if d.check.Interval <= 0 {
		h.until = now.Add(d.check.PassiveDown)
		h.fails = 0
		d.log.Warn("destination address out for a while", "set", d.Set, "uri", d.URI.String(), "address", h.target.Addr.String(), "why", why, "for", d.check.PassiveDown)
		return
	}
	h.up = false
	d.log.Warn("destination address down", "set", d.Set, "uri", d.URI.String(), "address", h.target.Addr.String(), "why", why)
}

// retryAfter reads a response's Retry-After (seconds; RFC 3261 20.33).
func retryAfter(res *sip.Response) time.Duration {
	h := res.GetHeader("Retry-After")
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	v, _, _ = strings.Cut(strings.TrimSpace(v), "(")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
