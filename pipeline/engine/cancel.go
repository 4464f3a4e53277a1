package engine

import (
	"net"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
)

// onCancel answers a CANCEL (RFC 3261 16.10) that the socket local read:
// 200 and cancellation of the matching INVITE's branches, or 481 when no
// INVITE matches.
func (e *Engine) onCancel(req *sip.Request, local net.Addr) {
	e.svc.Metrics.Message("in", "CANCEL", 0)
	key := inviteKey(req)
	v, ok := e.invites.Load(key)
	if !ok {
		// The INVITE may still be on its way to serve, or have got there
		// since the look-up: look again after waiting for it, if it is.
		e.calls.awaitInvite(req)
		v, ok = e.invites.Load(key)
	}
	var t *transaction
	if ok {
		t = v.(*transaction)
		if !t.hold() {
			t = nil // it ended as the CANCEL came
		}
	}
	if t == nil {
		res := sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil)
		e.respondStateless(req, res, local)
		return
	}
	defer t.unref()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	t.p.StampServer(res)
	rc := pipeline.NewResponseContext(t.p, req, res, true, sourceOf(req), t.transport)
	rc.Log = t.log
	if err := t.p.ServeResponse(rc, nil); err != nil {
		t.log.Error("response stage failed", "error", err, "code", 200)
	}
	e.svc.Metrics.Message("out", "CANCEL", 200)
	if err := t.tx.Connection().WriteMsg(res); err != nil {
		t.log.Warn("200 to CANCEL not sent", "error", err)
	}
	t.cancel(req, true)
}

// respondStateless answers a request that has no transaction, after the
// response stages of the current pipeline, from the socket that read it
// (local, for UDP; the connection, for a stream) to its source: sipgo's
// pool may not know that source yet.
func (e *Engine) respondStateless(req *sip.Request, res *sip.Response, local net.Addr) {
	if p := e.holdCurrent(); p != nil {
		defer p.Release()
		p.StampServer(res)
		rc := pipeline.NewResponseContext(p, req, res, true, sourceOf(req), req.Transport())
		if err := p.ServeResponse(rc, nil); err != nil {
			e.log.Error("response stage failed", "error", err, "code", res.StatusCode)
		}
	}
	e.svc.Metrics.Message("out", "CANCEL", res.StatusCode)
	transport := req.Transport()
	connAddr := req.Source()
	if !sip.IsReliable(transport) && local != nil {
		connAddr = local.String()
	}
	res.SetDestination(req.Source())
	conn, err := e.tp.GetConnection(transport, connAddr)
	if err == nil {
		defer conn.TryClose()
		err = conn.WriteMsg(res)
	}
	if err != nil {
		e.log.Debug("response not sent", "code", res.StatusCode, "error", err)
	}
}

// onStrayResponse relays a response that matches no client transaction:
// a 2xx retransmission after the INVITE's client transaction ended. It is
// sent on statelessly by the next Via, after the response stages.
func (e *Engine) onStrayResponse(res *sip.Response) {
	via := res.Via()
	if via == nil || e.pingAnswered(res) || e.lateStray(res) {
		return
	}
	p := e.holdCurrent()
	if p == nil {
		return
	}
	defer p.Release()
	u := sip.Uri{Host: via.Host, Port: via.Port}
	if !p.Ours.URI(&u) || !res.IsSuccess() {
		return
	}
	// A copy: the response may also wait in a branch's arrivals.
	res = copyResponse(res)
	res.RemoveHeader("Via")
	if res.Via() == nil {
		return
	}
	e.unshiftCSeq(res, time.Now())
	method := ""
	if cs := res.CSeq(); cs != nil {
		method = string(cs.MethodName)
	}
	e.svc.Metrics.Message("in", method, res.StatusCode)
	e.svc.Metrics.Message("out", method, res.StatusCode)
	rc := pipeline.NewResponseContext(p, nil, res, false, pipeline.Source{}, res.Transport())
	if err := p.ServeResponse(rc, nil); err != nil {
		e.log.Error("response stage failed", "error", err, "code", res.StatusCode)
	}
	e.writeStateless(res)
}

// unshiftCSeq gives res, a 2xx relayed without its client transaction (a
// retransmission T1 after the first), the CSeq number its caller sent: in
// a dialog whose INVITE a trunk challenged, the proxy raised the caller's
// numbers towards the callee (shiftCSeq), and restoreCSeq, which lowers
// them again, needs the transaction.
func (e *Engine) unshiftCSeq(res *sip.Response, now time.Time) {
	from, to, cs := pipeline.FromTag(res), pipeline.ToTag(res), res.CSeq()
	if from == "" || to == "" || cs == nil {
		return
	}
	d, ok, err := e.dialogs.Get(dialog.NewID(callID(res), from, to), now)
	if err != nil || !ok || d.CallerCSeqShift == 0 || d.CallerTag != from || cs.SeqNo <= d.CallerCSeqShift {
		return
	}
	cs.SeqNo -= d.CallerCSeqShift
}
