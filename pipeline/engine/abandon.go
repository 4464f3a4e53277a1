package engine

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// lateHangUp is the Reason of the BYE that ends a call a branch's
// abandoned address answered (RFC 3326): the branch had timed out.
const lateHangUp = `SIP;cause=408;text="Answered after the proxy gave up on it"`

// abandoned is what the proxy keeps of a branch it gave up on with no
// response from its address (failover to the next address after
// failover_timeout, or fr_timeout with no provisional response): the
// address may still answer, late, and its answer must neither reach the
// caller nor leave a call up there. The branch's client transaction is
// ended, so that the request is not sent again; what the address sends
// then matches no transaction and comes to lateStray.
type abandoned struct {
	e      *Engine
	key    string // the branch's (branchKey)
	invite bool
	// cancel is the branch's CANCEL (RFC 3261 9.1), sent at the first
	// provisional response; the proxy's ACKs and BYE take their headers
	// from it.
	cancel *sip.Request
	// recordRoutes counts the Record-Route entries of the request as
	// sent: a 2xx's entries above them are the proxies downstream.
	recordRoutes int

	mu        sync.Mutex
	until     time.Time // when the proxy forgets the branch
	cancelled bool      // a CANCEL was sent
	final     bool      // a final response came
	// acks are the ACKs sent for final responses, by To tag: a
	// retransmitted final gets the same ACK again.
	acks map[string]*sip.Request
}

// abandon ends the branch's client transaction and keeps what a late
// answer needs: a provisional response then gets a CANCEL, a 2xx an ACK
// and a BYE, another final response an ACK. The branch is kept until
// Timer B after the request (after which no first answer can come) and
// server.linger more, and 64*T1 after each 2xx (the callee sends it again
// until it is ACKed, RFC 3261 13.3.1.4).
func (b *branch) abandon(why string) {
	t := b.t
	a := &abandoned{
		e: t.e, key: b.key, invite: b.req.IsInvite(),
		cancel:       cancelFor(b.req, ""),
		recordRoutes: len(b.req.GetHeaders("Record-Route")),
		until:        t.start.Add(sip.Timer_B + t.e.linger),
	}
	t.e.abandoned.Store(a.key, a)
	a.expire()
	b.tx.Terminate()
	t.log.Debug("branch abandoned: a late answer is cancelled or hung up", "hop", a.hop(), "why", why)
}

// expire forgets the branch once its time is up.
func (a *abandoned) expire() {
	a.mu.Lock()
	left := time.Until(a.until)
	a.mu.Unlock()
	if left > 0 {
		time.AfterFunc(left, a.expire)
		return
	}
	a.e.abandoned.CompareAndDelete(a.key, a)
}

// hop is the address the branch was sent to, for logs.
func (a *abandoned) hop() string {
	return strings.ToLower(a.cancel.Transport()) + ":" + a.cancel.Destination()
}

// lateStray reports whether res, a response that matches no client
// transaction, answers a branch the proxy abandoned, and handles it if so.
// Nothing of it goes upstream.
func (e *Engine) lateStray(res *sip.Response) bool {
	v, ok := e.abandoned.Load(branchKey(res))
	if !ok {
		return false
	}
	a := v.(*abandoned)
	cs := res.CSeq()
	switch {
	case cs == nil:
		return false
	case cs.MethodName == sip.CANCEL:
		return true // the proxy's own CANCEL's, after its transaction
	}
	e.svc.Metrics.Message("in", string(cs.MethodName), res.StatusCode)
	switch {
	case !a.invite:
		if !res.IsProvisional() {
			a.log().Debug("late final response from an abandoned address dropped", "hop", a.hop(), "code", res.StatusCode)
			e.svc.Metrics.LateAnswer(metrics.LateAbsorbed)
		}
	case res.IsProvisional():
		a.cancelOnce(res)
	default:
		a.acknowledge(res)
	}
	return true
}

// log is the engine's logger with the call's Call-ID: the transaction's
// own would keep the whole transaction for as long as the branch.
func (a *abandoned) log() *slog.Logger {
	return a.e.log.With("call_id", callID(a.cancel))
}

// cancelOnce sends the branch's CANCEL at its first provisional response,
// unless a final one came first.
func (a *abandoned) cancelOnce(res *sip.Response) {
	a.mu.Lock()
	send := !a.cancelled && !a.final
	a.cancelled = true
	a.mu.Unlock()
	if !send {
		return
	}
	a.log().Info("late provisional response from an abandoned address: cancelling it", "hop", a.hop(), "code", res.StatusCode)
	a.e.svc.Metrics.LateAnswer(metrics.LateCancelled)
	tx, err := a.e.sendRequest(a.cancel)
	if err != nil {
		a.log().Warn("CANCEL not sent", "hop", a.hop(), "error", err)
		return
	}
	a.e.svc.Metrics.Message("out", "CANCEL", 0)
	drainClient(tx)
}

// acknowledge ACKs a final response to the abandoned INVITE, and ends the
// call a 2xx set up with a BYE; a retransmitted final gets the same ACK.
func (a *abandoned) acknowledge(res *sip.Response) {
	tag := pipeline.ToTag(res)
	ok := res.IsSuccess()
	a.mu.Lock()
	a.final = true
	if ok {
		a.until = maxTime(a.until, time.Now().Add(64*sip.T1))
	}
	ack, sent := a.acks[tag]
	if !sent {
		if ok {
			ack = a.dialogRequest(sip.ACK, res)
		} else {
			ack = a.ackNon2xx(res)
		}
		if a.acks == nil {
			a.acks = map[string]*sip.Request{}
		}
		a.acks[tag] = ack
	}
	a.mu.Unlock()
	a.e.svc.Metrics.Message("out", "ACK", 0)
	// A copy: sipgo's write sets the request's destination, and two
	// retransmissions of the final may be ACKed at once.
	if err := a.e.tp.WriteMsg(ack.Clone()); err != nil {
		a.log().Warn("ACK of a late final response not sent", "hop", a.hop(), "error", err)
	}
	switch {
	case sent:
	case !ok:
		a.log().Debug("late final response from an abandoned address ACKed", "hop", a.hop(), "code", res.StatusCode)
		a.e.svc.Metrics.LateAnswer(metrics.LateAbsorbed)
	default:
		a.log().Warn("late 2xx from an abandoned address: ACKed and hung up, not relayed", "hop", a.hop(), "from", res.Source(), "code", res.StatusCode)
		a.e.svc.Metrics.LateAnswer(metrics.LateHungUp)
		a.hangUp(res)
	}
}

// hangUp sends the BYE that ends the call res, a late 2xx, set up.
func (a *abandoned) hangUp(res *sip.Response) {
	bye := a.dialogRequest(sip.BYE, res)
	bye.AppendHeader(sip.NewHeader("Reason", lateHangUp))
	tx, err := a.e.sendRequest(bye)
	if err != nil {
		a.log().Warn("BYE of a late 2xx not sent", "hop", a.hop(), "error", err)
		return
	}
	a.e.svc.Metrics.Message("out", "BYE", 0)
	drainClient(tx)
}

// ackNon2xx is the ACK of a non-2xx final response (RFC 3261 17.1.1.3):
// hop by hop, with the INVITE's Via, Request-URI and Route set, and the
// response's To.
func (a *abandoned) ackNon2xx(res *sip.Response) *sip.Request {
	ack := a.cancel.Clone()
	ack.Method = sip.ACK
	if cs := a.cancel.CSeq(); cs != nil {
		ack.ReplaceHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.ACK})
	}
	if to := res.To(); to != nil {
		ack.ReplaceHeader(sip.HeaderClone(to))
	}
	ack.SetTransport(a.cancel.Transport())
	ack.SetDestination(a.cancel.Destination())
	ack.Laddr = a.cancel.Laddr
	return ack
}

// dialogRequest builds the proxy's own ACK or BYE in the dialog that res,
// a 2xx to the abandoned INVITE, set up (RFC 3261 12.2.1.1, 13.2.2.4): to
// its Contact, along its Record-Route entries above those the INVITE
// carried (the proxies downstream), with the INVITE's From and CSeq
// number (the next one for a BYE). It goes to the address the 2xx came
// from, from the INVITE's socket and sent-by.
func (a *abandoned) dialogRequest(method sip.RequestMethod, res *sip.Response) *sip.Request {
	c := a.cancel
	ruri := c.Recipient
	if contact := res.Contact(); contact != nil {
		ruri = contact.Address
	}
	req := sip.NewRequest(method, *ruri.Clone())
	req.SipVersion = c.SipVersion
	if v := c.Via(); v != nil {
		via := &sip.ViaHeader{ProtocolName: v.ProtocolName, ProtocolVersion: v.ProtocolVersion, Transport: v.Transport, Host: v.Host, Port: v.Port, Params: sip.NewParams()}
		via.Params.Add("branch", sip.GenerateBranch())
		req.AppendHeader(via)
	}
	rr := res.GetHeaders("Record-Route")
	for _, h := range slices.Backward(rr[:max(len(rr)-a.recordRoutes, 0)]) {
		if r, ok := h.(*sip.RecordRouteHeader); ok {
			req.AppendHeader(&sip.RouteHeader{Address: *r.Address.Clone()})
		}
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, h := range []sip.Header{c.From(), res.To(), c.CallID()} {
		if h != nil {
			req.AppendHeader(sip.HeaderClone(h))
		}
	}
	seq := uint32(0)
	if cs := c.CSeq(); cs != nil {
		seq = cs.SeqNo
	}
	if method != sip.ACK {
		seq++
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.SetBody(nil)
	req.SetTransport(c.Transport())
	req.SetDestination(res.Source())
	req.Laddr = c.Laddr
	return req
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// drainClient reads a client transaction's responses until its final one
// or its end, as sipgo needs (it blocks on an unread response), for the
// proxy's own CANCEL and BYE, which need nothing of their answers.
func drainClient(tx *sip.ClientTx) {
	go func() {
		for {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					return
				}
			case <-tx.Done():
				return
			}
		}
	}()
}
