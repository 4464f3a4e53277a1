package engine

import (
	"net/netip"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// A request for a phone's flow (the stream connection it registered over)
// may be written just as the phone closes that connection: sipgo's reader
// has seen the end of it, but has not yet taken it out of the pool, and
// the write still succeeds. The phone never answers: an INVITE's branch
// would wait for fr_timeout (30 s), a non-INVITE's for Timer F (32 s, and
// no 408 upstream, RFC 4320). So the branches sent over a stream
// connection are kept by its remote address until their first response;
// when the Guard says the connection closed (it wraps the listeners, and
// tells of the connections phones opened), each ends at once as a flow
// failure (flowLost), as a request for a flow already gone does.

// flowBranches are the branches waiting for a first response over stream
// connections, by remote address (those over a connection the proxy
// dialed are kept too, and never told of: harmless).
type flowBranches struct {
	mu sync.Mutex
	m  map[netip.AddrPort][]*branch
}

// add keeps b, sent over the connection of remote, and gives it the
// channel closed when that connection closes.
func (f *flowBranches) add(remote netip.AddrPort, b *branch) {
	b.flow, b.flowClosed = remote, make(chan struct{})
	f.mu.Lock()
	if f.m == nil {
		f.m = map[netip.AddrPort][]*branch{}
	}
	f.m[remote] = append(f.m[remote], b)
	f.mu.Unlock()
}

// remove forgets b: it had a response, or ended.
func (f *flowBranches) remove(b *branch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := f.m[b.flow]
	for i, o := range list {
		if o == b {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(f.m, b.flow)
	} else {
		f.m[b.flow] = list
	}
}

// closed tells the branches sent over the connection of remote that it
// closed. It runs on the goroutine closing the connection (Guard.OnClose).
func (f *flowBranches) closed(remote netip.AddrPort) {
	f.mu.Lock()
	list := f.m[remote]
	delete(f.m, remote)
	f.mu.Unlock()
	for _, b := range list {
		close(b.flowClosed)
	}
}

// watchFlow keeps b, about to be sent, when its target is a stream
// connection (a flow, or the other end of a dialog).
func (e *Engine) watchFlow(b *branch) {
	if b.target.Destination == "" || !isStream(b.req.Transport()) {
		return
	}
	remote, err := netip.ParseAddrPort(b.req.Destination())
	if err != nil {
		return
	}
	e.unanswered.add(netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()), b)
}

// unwatchFlow forgets b, if watchFlow kept it.
func (b *branch) unwatchFlow() {
	if b.flowClosed != nil {
		b.t.e.unanswered.remove(b)
	}
}

// flowLost ends a branch whose connection closed before anything came
// back over it: on to the target's next hop or target (another flow of
// the phone, RFC 5626 7), if it has one, else with flowFailed's answer.
// The phone may have read the request and answer over a new connection
// (RFC 3261 18.2.2): the branch is abandoned, so that a late ring is
// cancelled and a late 2xx hung up rather than relayed after the answer.
func (b *branch) flowLost() {
	t := b.t
	b.answered(nil)
	defer b.abandon("connection closed")
	if b.failover("connection closed") || !b.markDone() {
		return
	}
	t.log.Debug("branch ended: its connection closed", "target", b.target.URI.String(), "destination", b.req.Destination())
	t.addFinal(flowFailed(t.req, b.target))
	t.maybeFinish()
}

// flowFailed is the answer for a target whose connection is gone: 430
// Flow Failed when the binding is an RFC 5626 flow (the phone registered
// it with a reg-id), else 480, which any phone understands. RFC 5626 11.5
// means 430 for a proxy upstream; a calling phone treats it as 400 (a
// failed call either way, docs/nat.md).
func flowFailed(req *sip.Request, target pipeline.Target) *sip.Response {
	if target.Instance != "" {
		return sip.NewResponseFromRequest(req, 430, "Flow Failed", nil)
	}
	return sip.NewResponseFromRequest(req, 480, "Temporarily Unavailable", nil)
}
