package engine

import (
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// rounds are the transaction's serial forking (pipeline.Next): each round
// is a parallel fork to a set of targets; when all its branches ended
// without a 2xx, the round's Next decides the next one.
type rounds struct {
	// next decides what follows the current round (nil: nothing).
	next *pipeline.Next
	// nextReq is the request as forward had it before the first round,
	// for the later ones.
	nextReq *sip.Request
	// round counts the rounds; finalsFrom is where the current round's
	// final responses start in finals.
	round      int
	finalsFrom int
	// noAnswer is set when the current round's no-answer timer ended it;
	// ringTimer is that timer, once a branch of the round rang.
	noAnswer  bool
	ringTimer *time.Timer
}

// nextRound is called by maybeFinish with t.mu held, once every branch
// is done and no final response went upstream. When the current round
// has a Next, it calls it (without the lock) and sends the request to
// the targets it returns, and reports true: the transaction goes on.
func (t *transaction) nextRound() bool {
	if t.next == nil || t.cancelled || t.answered {
		return false
	}
	next := t.next
	out := pipeline.Outcome{NoAnswer: t.noAnswer, Request: t.nextReq}
	round := t.finals[t.finalsFrom:]
	for _, r := range round {
		out.Codes = append(out.Codes, r.StatusCode)
	}
	if best := bestResponse(round); best != nil {
		if best.StatusCode == 500 && containsCode(out.Codes, 503) {
			best.StatusCode, best.Reason = 503, "Service Unavailable"
		}
		out.Best = best
	}
	t.next = nil
	t.forwarding = true
	t.mu.Unlock()

	targets, then := next.Then(out)

	t.mu.Lock()
	t.stopRingTimer()
	if len(targets) == 0 || t.cancelled || t.answered {
		t.forwarding = false
		return false
	}
	t.round++
	t.finalsFrom = len(t.finals)
	t.noAnswer = false
	t.next = then
	t.mu.Unlock()
	t.sendTargets(t.nextReq, targets, false)
	t.mu.Lock()
	t.forwarding = false
	t.mu.Unlock()
	t.maybeFinish()
	t.mu.Lock()
	return true
}

func containsCode(codes []int, code int) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// rang starts the no-answer timer of b's round at its first ringing
// (a provisional response above 100), when the round has one.
func (t *transaction) rang(b *branch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next == nil || t.next.NoAnswer <= 0 || t.ringTimer != nil || b.round != t.round {
		return
	}
	round := t.round
	t.ringTimer = time.AfterFunc(t.next.NoAnswer, func() { t.notAnswered(round) })
}

// stopRingTimer stops the current round's no-answer timer; t.mu is held.
func (t *transaction) stopRingTimer() {
	if t.ringTimer != nil {
		t.ringTimer.Stop()
		t.ringTimer = nil
	}
}

// notAnswered ends a round that rang its no-answer time: each of its
// pending branches is cancelled and counts as 480, and the round's Next
// is asked what comes next.
func (t *transaction) notAnswered(round int) {
	t.mu.Lock()
	if round != t.round || t.answered || t.cancelled || t.finalSent {
		t.mu.Unlock()
		return
	}
	t.noAnswer = true
	var pending []*branch
	for _, b := range t.branches {
		if b.round == round && !b.done {
			b.done = true
			pending = append(pending, b)
			t.finals = append(t.finals, sip.NewResponseFromRequest(t.req, 480, "Temporarily Unavailable", nil))
		}
	}
	t.mu.Unlock()
	t.log.Info("no answer: cancelling the branches", "branches", len(pending))
	for _, b := range pending {
		b.cancel()
	}
	t.maybeFinish()
}
