package engine

import (
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
)

// A next hop that challenges the proxy itself (a SIP trunk's 401 or 407)
// is answered as a UAC would (RFC 3261 22.2): the branch's request goes
// again, with the target's credentials and the next CSeq number, in a
// new client transaction of the same server transaction, to the same
// address; the caller sees the challenge only when that one is
// challenged too. The caller's CSeq numbers towards the callee are then
// one higher than those it wrote: every response carries the caller's
// own number back (restoreCSeq), and the dialog keeps the difference for
// the caller's later requests (shiftCSeq).

// answerChallenge sends the branch's request once more with credentials
// for the challenge res, as a new branch, and reports whether it did.
// The new branch is in the transaction before b is done, so that the
// transaction does not finish in between.
func (b *branch) answerChallenge(res *sip.Response) bool {
	t := b.t
	creds := b.target.Credentials
	if creds == nil || b.challenged || b.req.IsAck() || b.req.IsCancel() || !t.mayFailover() {
		return false
	}
	h, ok := creds.Authorize(b.req, res)
	if !ok {
		t.log.Info("challenge not answered: no credentials for its realm and algorithms", "code", res.StatusCode, "target", b.target.URI.String())
		return false
	}
	req := b.req.Clone()
	via, cseq := req.Via(), req.CSeq()
	if via == nil || cseq == nil {
		return false
	}
	via.Params.Add("branch", sip.GenerateBranch())
	cseq.SeqNo++
	req.AppendHeader(h)
	target := b.target
	if len(target.Hops) > 1 {
		target.Hops = target.Hops[:1] // the address that challenged
	}
	nb, err := t.startBranch(req, target, t.traced)
	if err != nil {
		t.log.Warn("challenge not answered", "target", target.URI.String(), "error", err)
		return false
	}
	nb.challenged = true
	t.log.Debug("challenge answered", "code", res.StatusCode, "target", target.URI.String(), "cseq", cseq.SeqNo)
	t.addBranch(nb)
	t.mu.Lock()
	b.done = true
	t.mu.Unlock()
	return true
}

// restoreCSeq gives a response going upstream the CSeq number of the
// request as received: a branch may have sent a higher one.
func (t *transaction) restoreCSeq(res *sip.Response) {
	if cs, want := res.CSeq(), t.req.CSeq(); cs != nil && want != nil {
		cs.SeqNo = want.SeqNo
	}
}

// cseqShift is how much higher the CSeq of branch b is than the caller's.
func (t *transaction) cseqShift(b *branch) uint32 {
	if cs, want := b.req.CSeq(), t.req.CSeq(); cs != nil && want != nil && cs.SeqNo > want.SeqNo {
		return cs.SeqNo - want.SeqNo
	}
	return 0
}

// shiftCSeq raises the CSeq of a request the caller of dialog d sends
// towards the callee by the dialog's shift, so that the callee sees the
// numbers grow after those of the challenged INVITE.
func shiftCSeq(req *sip.Request, d *dialog.Dialog) {
	if d.CallerCSeqShift == 0 || req.IsCancel() {
		return
	}
	if cs := req.CSeq(); cs != nil && pipeline.FromTag(req) == d.CallerTag {
		cs.SeqNo += d.CallerCSeqShift
	}
}
