package engine

import (
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// The ACK of a 2xx is a request of its own, routed by its Request-URI
// or Route (RFC 3261 13.2.2.4), and a host name there resolves to the
// same addresses, in the same order, as for the INVITE: the first of
// them may be the one the INVITE failed over from. Where the proxy keeps
// the dialog (it record-routed), the ACK goes to the address the 2xx came
// from anyway. Where it does not, it remembers that address for 64*T1,
// long enough for the ACK and its retransmissions, and sends the ACK
// there when the ACK's next hop resolves to it.

// noteAnswer remembers the address that sent res, a 2xx on INVITE branch
// b, when the branch went to a resolved next hop and the proxy keeps no
// dialog for it.
func (t *transaction) noteAnswer(b *branch, res *sip.Response) {
	if len(b.target.Hops) == 0 || !b.req.IsInvite() || t.recordsDialog() {
		return
	}
	id := dialog.NewID(callID(res), pipeline.FromTag(res), pipeline.ToTag(res))
	hop := b.target.Hops[0]
	e := t.e
	e.answeredHops.Store(id, hop)
	time.AfterFunc(64*sip.T1, func() { e.answeredHops.CompareAndDelete(id, hop) })
}

// answeredHop puts first, among the resolved hops of target, the address
// that sent the 2xx the ACK req acknowledges, if it is one of them.
func (e *Engine) answeredHop(req *sip.Request, target pipeline.Target) pipeline.Target {
	if len(target.Hops) < 2 {
		return target
	}
	v, ok := e.answeredHops.Load(dialog.NewID(callID(req), pipeline.FromTag(req), pipeline.ToTag(req)))
	if !ok {
		return target
	}
	hop := v.(resolve.Target)
	i := slices.IndexFunc(target.Hops, func(h resolve.Target) bool {
		return h.Addr == hop.Addr && h.Transport == hop.Transport
	})
	if i <= 0 {
		return target
	}
	hops := make([]resolve.Target, 0, len(target.Hops))
	hops = append(hops, target.Hops[i])
	hops = append(hops, target.Hops[:i]...)
	target.Hops = append(hops, target.Hops[i+1:]...)
	return target
}
