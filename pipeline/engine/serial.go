package engine

import (
	"errors"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// unresolvedError is why a target was not sent: its next hop's name did
// not resolve (withHops).
type unresolvedError struct{ err error }

func (e *unresolvedError) Error() string { return e.err.Error() }
func (e *unresolvedError) Unwrap() error { return e.err }

// sendSerial resolves target and sends req to it; when that fails at once
// (the name does not resolve, no hop takes it), it moves on to the targets
// of its Failover in turn (serial forking). It returns the branch, or the
// last target tried and why it was not sent. With last, req itself may
// become the branch.
func (t *transaction) sendSerial(req *sip.Request, target pipeline.Target, last bool) (*branch, pipeline.Target, error) {
	for {
		// With a next target, req stays as it is (prepare copies it):
		// the next target needs the request as it was.
		next, more := target.Failover.Then()
		b, err := t.sendResolved(req, target, last && !more)
		if err == nil {
			return b, target, nil
		}
		observeAnswer(target, "", nil)
		if !more || !t.mayFailover() {
			return nil, target, err
		}
		log := t.log.Info
		if errors.Is(err, errFlowGone) {
			log = t.log.Debug // a phone's other flow: routine
		}
		log("destination failed: trying the next", "target", target.URI.String(), "error", err, "next", next.URI.String())
		target = next
	}
}

// sendResolved resolves target's next hop and sends req to the first of
// its hops that takes it.
func (t *transaction) sendResolved(req *sip.Request, target pipeline.Target, last bool) (*branch, error) {
	target, err := t.withHops(req, target)
	if err != nil {
		return nil, &unresolvedError{err}
	}
	return t.sendHops(req, target, last)
}

// notForwarded keeps the answer of a target that could not be sent.
func (t *transaction) notForwarded(target pipeline.Target, err error) {
	var ue *unresolvedError
	if errors.As(err, &ue) {
		t.unresolved(target, ue.err)
		return
	}
	t.notSent(target, err)
}

// nextTarget is the target of the branch's failover that comes next.
func (b *branch) nextTarget() (pipeline.Target, bool) {
	return b.target.Failover.Then()
}

// failsOver reports whether a final response with code moves the branch
// on: 503 always (RFC 3263 4.3), and the codes of its failover; to a
// phone's other flow, 408 and 430 only (toOtherFlow).
func (b *branch) failsOver(code int) bool {
	if b.toOtherFlow() {
		// Any other final response is the phone's own answer.
		return code == 408 || code == 430
	}
	if code == 503 {
		return true
	}
	return b.target.Failover != nil && b.target.Failover.FailsOver(code)
}

// attempted tells the call's Attempts and the target's observer that the
// branch was sent.
func (b *branch) attempted() {
	b.attempt = b.t.ctx.Attempts.Sent(b.req.Recipient.String(), b.req.Destination())
	if o := b.target.Observer; o != nil {
		o.Attempted(b.req.Destination())
	}
}

// answered tells the target's observer, once, how the branch ended: res,
// or nil for no final response.
func (b *branch) answered(res *sip.Response) {
	if b.observed {
		return
	}
	b.observed = true
	if res != nil {
		b.t.ctx.Attempts.Ended(b.attempt, res.StatusCode)
	}
	observeAnswer(b.target, b.req.Destination(), res)
}

func observeAnswer(target pipeline.Target, hop string, res *sip.Response) {
	if o := target.Observer; o != nil {
		o.Answered(hop, res)
	}
}
