package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// resolveBudget bounds the DNS queries for one next hop: NAPTR, SRV and
// address records, each asked of every server in turn.
const resolveBudget = 5 * time.Second

// errNoHop is why a name that resolved to no address the proxy has a
// socket for is not sent to.
var errNoHop = errors.New("no address of the next hop has a transport and family the proxy listens on")

// Resolver returns the engine's DNS resolver (RFC 3263), which the
// engine uses for every next hop named by a host name. A stage may use it
// to fill pipeline.Target.Hops itself.
func (e *Engine) Resolver() *resolve.Resolver { return e.resolver }

// supports reports whether the proxy can send over transport: it has a
// socket for it.
func (e *Engine) supports(transport string) bool {
	_, ok := e.socketFor(transport, netip.Addr{})
	return ok
}

// withHops returns target with its Hops: the targets of the next hop's
// host name (the first Path entry, the top Route, or the Request-URI),
// in the order RFC 3263 gives, keeping those the proxy has a socket for.
// A target that names a Destination (a flow, a registered contact), or
// whose next hop is an IP address, needs none.
func (t *transaction) withHops(req *sip.Request, target pipeline.Target) (pipeline.Target, error) {
	if target.Destination != "" {
		return target, nil
	}
	hops := target.Hops
	if len(hops) == 0 {
		uri := nextHopURI(req, target)
		if _, err := netip.ParseAddr(strings.Trim(uri.Host, "[]")); err == nil || t.e.resolver == nil {
			return target, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), resolveBudget)
		defer cancel()
		var err error
		if hops, err = t.e.resolver.Resolve(ctx, uri); err != nil {
			return target, fmt.Errorf("%s: %w", uri.Host, err)
		}
	}
	usable := t.e.usableHops(hops)
	if len(usable) == 0 {
		return target, errNoHop
	}
	target.Hops = usable
	t.log.Debug("next hop resolved", "uri", target.URI.String(), "hops", usable)
	return target, nil
}

// usableHops are the hops the proxy has a socket for.
func (e *Engine) usableHops(hops []resolve.Target) []resolve.Target {
	usable := make([]resolve.Target, 0, len(hops))
	for _, h := range hops {
		if _, ok := e.socketFor(h.Transport, h.Addr.Addr()); ok {
			usable = append(usable, h)
		}
	}
	return usable
}

// nextHopURI is the URI whose host the request is sent to: the target's
// first Path entry, else the top Route, else the target's URI.
func nextHopURI(req *sip.Request, target pipeline.Target) *sip.Uri {
	if len(target.Path) > 0 {
		if r, err := parseRoute(target.Path[0]); err == nil {
			return &r.Address
		}
	}
	if r := pipeline.TopRoute(req); r != nil {
		return &r.Address
	}
	return &target.URI
}

// unresolved keeps the answer of a branch whose next hop did not resolve,
// and logs why: 478 Unresolvable Destination for a name that does not
// exist or has no address (as Kamailio and OpenSIPS answer), 503 when
// the DNS servers gave no answer or no address can be sent to (RFC 3263
// 4.3: no target could be reached).
func (t *transaction) unresolved(target pipeline.Target, err error) {
	t.log.Warn("next hop not resolved", "stage", "forward", "target", target.URI.String(), "error", err)
	res := sip.NewResponseFromRequest(t.req, 503, "Service Unavailable", nil)
	if errors.Is(err, resolve.ErrNotFound) {
		res = sip.NewResponseFromRequest(t.req, 478, "Unresolvable Destination", nil)
	}
	t.addFinal(res)
}

// sendHops sends req to target's first hop that takes it: one that fails
// at once (a refused connection) is skipped for the next. With last, req
// itself becomes the branch. When hops remain, the branch keeps a copy
// of req to fail over to them later.
func (t *transaction) sendHops(req *sip.Request, target pipeline.Target, last bool) (*branch, error) {
	// A destination set's next target needs the request too.
	_, more := target.Failover.Then()
	var src *sip.Request
	if len(target.Hops) > 1 || more {
		src = req.Clone()
	}
	for {
		b, err := t.newBranch(req, target, last, t.traced)
		if err == nil {
			if len(target.Hops) > 1 || more {
				b.src = src
			}
			return b, nil
		}
		if len(target.Hops) < 2 || !t.mayFailover() {
			return nil, err
		}
		t.log.Info("next hop failed: trying the next", "hop", target.Hops[0].String(), "error", err)
		target.Hops = target.Hops[1:]
		req, last = src, len(target.Hops) == 1 && !more
	}
}

// addBranch puts a branch that was sent into the transaction and starts
// reading its responses.
func (t *transaction) addBranch(b *branch) {
	t.mu.Lock()
	t.branches = append(t.branches, b)
	t.running++
	b.round = t.round
	late := t.answered || t.cancelled
	if t.answered {
		b.cancelReason = cancelledElsewhere
	}
	t.mu.Unlock()
	if late {
		// cancelBranches or cancel ran before this branch was in the
		// list: cancel it now (at its first provisional).
		b.cancel()
	}
	// The branch holds the transaction until its client transaction
	// ends, not only until its final response: a 2xx retransmission
	// still runs the response stages of this pipeline (Timer M).
	t.refs.Add(1)
	if !b.tx.OnTerminate(func(string, error) { t.unref() }) {
		t.unref()
	}
	t.e.workers.run(b.run)
}

// mayFailover reports whether a branch may still move to another hop:
// not after the caller's CANCEL or a 2xx or 6xx (the branches are being
// cancelled).
func (t *transaction) mayFailover() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.cancelled && !t.answered && !t.finalSent
}

// failover sends the branch's request to its next hop, as a new branch of
// the transaction, and reports whether it did. The new branch is in the
// transaction before b is done, so that the transaction does not finish
// in between.
func (b *branch) failover(why string) bool {
	t := b.t
	if b.src == nil || !b.canFailover() || !t.mayFailover() {
		return false
	}
	t.mu.Lock()
	over := b.cancelWanted || b.done
	t.mu.Unlock()
	if over {
		return false
	}
	next, more := b.nextTarget()
	var nb *branch
	var err error
	if len(b.target.Hops) > 1 {
		same := b.target
		same.Hops = same.Hops[1:]
		t.log.Info("next hop failed: trying the next", "hop", b.target.Hops[0].String(), "why", why, "next", same.Hops[0].String())
		nb, err = t.sendHops(b.src, same, !more)
	}
	if nb == nil && more && t.mayFailover() {
		t.log.Info("destination failed: trying the next", "target", b.target.URI.String(), "why", why, "next", next.URI.String())
		nb, _, err = t.sendSerial(b.src, next, true)
	}
	if nb == nil {
		// The branch ends with its own answer.
		t.log.Warn("no next hop took the request", "target", b.target.URI.String(), "why", why, "error", err)
		return false
	}
	t.addBranch(nb)
	t.mu.Lock()
	b.done = true
	t.mu.Unlock()
	return true
}

// failoverTimer returns a timer for the branch's FailoverTimeout (at most
// its fr_timeout), or nil when it has no hop left to move to.
func (b *branch) failoverTimer() *time.Timer {
	if b.src == nil || !b.canFailover() || b.toOtherFlow() {
		return nil
	}
	opts := b.t.ctx.Forward
	d := opts.FailoverTimeout
	if f := b.target.Failover; f != nil && f.Timeout > 0 {
		d = f.Timeout
	}
	if d <= 0 {
		d = pipeline.DefaultFailoverTimeout
	}
	if opts.ProvisionalTimeout > 0 {
		d = min(d, opts.ProvisionalTimeout)
	}
	return time.NewTimer(d)
}

// toOtherFlow reports whether the branch's next target is another flow of
// the same phone (RFC 5626 instance), and it has no next hop of its own.
// A live phone may be slow to answer, and would get the request twice:
// the request moves to the other flow only when its connection closes
// unanswered, or on 408 or 430 (RFC 5626 7), never on silence alone.
func (b *branch) toOtherFlow() bool {
	next, ok := b.nextTarget()
	return ok && len(b.target.Hops) < 2 && b.target.Instance != "" && next.Instance == b.target.Instance
}

// canFailover reports whether the branch has somewhere to go next: another
// hop of its next hop's name, or another target of its failover.
func (b *branch) canFailover() bool {
	_, ok := b.nextTarget()
	return len(b.target.Hops) > 1 || ok
}
