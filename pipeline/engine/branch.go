package engine

import (
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// branch is one forwarded copy of a request: a client transaction.
type branch struct {
	t   *transaction
	req *sip.Request
	tx  *sip.ClientTx
	// expired is set when fr_timeout or Timer C fired, or a CANCEL was
	// sent: the branch then waits 64*T1 at most (read only by run).
	expired bool
	// cancelling is closed when the branch's CANCEL is sent.
	cancelling chan struct{}
	// key finds the branch for onMessage (branchKey).
	key string
	// final is set when run handled a final response (read only by run).
	final bool
	// observed is set once the target's observer heard how the branch
	// ended (read only by run).
	observed bool
	// target is what the branch was made for; its Hops start with the
	// address it was sent to. src is the request as it was before
	// prepare, kept to send to the next hop (nil with none).
	target pipeline.Target
	src    *sip.Request
	// challenged is set on a branch that answers a challenge (a
	// trunk's 401 or 407): a second one goes upstream.
	challenged bool
	// round is the transaction's round the branch belongs to (rounds).
	round int
	// attempt is the branch's index in the call's Attempts.
	attempt int
	// flowClosed, when the branch went over a stream connection to the
	// remote address flow, is closed if that connection closes before
	// the first response is handled (flowBranches).
	flowClosed chan struct{}
	flow       netip.AddrPort

	// arrivals are the branch's responses in the order they reached the
	// proxy, taken by onMessage while the branch is open (arrived), for
	// run to handle in that order (take).
	arrivalsMu sync.Mutex
	open       bool
	arrivals   []arrival

	// guarded by t.mu
	provisional  bool   // a 1xx arrived: the branch may be cancelled
	done         bool   // a final response arrived, or the branch failed
	cancelSent   bool   //
	cancelReason string // a CANCEL waits for the first 1xx
	cancelWanted bool
}

func (t *transaction) newBranch(req *sip.Request, target pipeline.Target, last, traced bool) (*branch, error) {
	br, err := t.prepare(req, target, sip.GenerateBranch(), last)
	if err != nil {
		return nil, err
	}
	if len(target.Hops) > 0 {
		if err := t.e.dialTLSName(target.Hops[0]); err != nil {
			return nil, err
		}
	}
	return t.startBranch(br, target, traced)
}

// startBranch sends br, a request prepared for target, in a client
// transaction of its own.
func (t *transaction) startBranch(br *sip.Request, target pipeline.Target, traced bool) (*branch, error) {
	b := &branch{t: t, req: br, cancelling: make(chan struct{}), key: branchKey(br), open: true, target: target}
	if traced {
		t.traceBranch(br)
	}
	// Known before it is sent: a response may come back at once, or the
	// connection close.
	t.e.branches.Store(b.key, b)
	t.e.watchFlow(b)
	tx, err := t.e.sendRequest(br)
	if err != nil {
		b.close()
		return nil, err
	}
	b.tx = tx
	b.attempted()
	t.e.svc.Metrics.Message("out", string(br.Method), 0)
	tx.OnRetransmission(func(res *sip.Response) {
		if res.IsSuccess() {
			t.relay2xxRetransmission(res)
		}
	})
	return b, nil
}

// run reads the branch's responses until the final one (or the end of its
// client transaction), and enforces fr_timeout and Timer C. It handles
// them in the order they reached the proxy, not the order in which sipgo's
// goroutines passed them up (take). After a final response sipgo passes
// nothing more up the channel: a 2xx retransmission comes through
// OnRetransmission, other retransmissions are absorbed. The client
// transaction lingers in sipgo for its Timer D, K or M, but no goroutine
// waits for it.
func (b *branch) run() {
	t := b.t
	defer func() {
		b.close()
		t.mu.Lock()
		t.running--
		t.shedIfDone()
		t.mu.Unlock()
	}()
	opts := t.ctx.Forward
	frTimeout := opts.ProvisionalTimeout
	if frTimeout <= 0 {
		frTimeout = DefaultProvisionalTimeout
	}
	timerC := opts.InviteTimeout
	if timerC <= 0 {
		timerC = DefaultInviteTimeout
	}
	timer := time.NewTimer(frTimeout)
	defer timer.Stop()
	invite := b.req.IsInvite()
	cancelling := b.cancelling
	flowClosed := b.flowClosed
	// Until the first response, a branch with hops left moves on to the
	// next one after FailoverTimeout (RFC 3263 4.3).
	var failover <-chan time.Time
	if fo := b.failoverTimer(); fo != nil {
		defer fo.Stop()
		failover = fo.C
	}
	for {
		select {
		case res := <-b.tx.Responses():
			failover = nil
			if flowClosed != nil {
				// The phone answered over its connection: a close from
				// now on is left to the transaction's timers.
				b.unwatchFlow()
				flowClosed = nil
			}
			for _, a := range b.take(res) {
				t.e.calls.awaitResponses(a.turn)
				if !b.final && !a.res.IsProvisional() {
					b.answered(a.res)
				}
				switch {
				case !b.final && b.failsOver(a.res.StatusCode) && b.failover(strconv.Itoa(a.res.StatusCode)):
					// RFC 3263 4.3: a 503 sends the request to the next
					// hop (and a destination set's codes to its next
					// destination); this branch ends without an answer of
					// its own.
					t.e.svc.Metrics.Message("in", string(b.req.Method), a.res.StatusCode)
					timer.Stop()
					b.final = true
				case !b.final:
					if a.res.IsProvisional() && invite && !b.expired {
						resetTimer(timer, timerC)
					} else if !a.res.IsProvisional() {
						timer.Stop()
						b.final = true
					}
					b.onResponse(a.res)
				case invite && a.res.IsSuccess():
					// Another 2xx (a forking proxy downstream) that came
					// after the first: sipgo would have passed it to
					// OnRetransmission had it come in order.
					t.relay2xxRetransmission(a.res)
				}
				t.e.calls.end(a.turn)
			}
			// A final handled in arrival order before a provisional that
			// sipgo passed up first: its own pass-up is still to come,
			// and must be read.
			if !res.IsProvisional() {
				return
			}
		case <-timer.C:
			if b.expired {
				// RFC 3261 9.1: no final response 64*T1 after the CANCEL
				// (a callee that rang and went silent): sipgo's INVITE
				// client transaction has no timer left in Proceeding.
				b.tx.Terminate()
				continue
			}
			b.expired = true
			timer.Reset(64 * sip.T1)
			b.timeout()
		case <-cancelling:
			// RFC 3261 9.1 and 16.10: after a CANCEL the branch waits
			// 64*T1 for its 487, not Timer C.
			cancelling = nil
			if !b.expired {
				b.expired = true
				resetTimer(timer, 64*sip.T1)
			}
		case <-failover:
			failover = nil
			if b.failover("no response") {
				b.answered(nil)
				// Nothing came back: no CANCEL can be sent yet (RFC
				// 3261 9.1); a late answer is handled by lateStray.
				b.abandon("failover")
				return
			}
		case <-flowClosed:
			flowClosed = nil
			if b.hasArrivals() {
				// A response came over the connection before it
				// closed: sipgo has yet to pass it up.
				continue
			}
			b.flowLost()
			return
		case <-b.tx.Done():
			if !b.final {
				b.answered(nil)
			}
			if errors.Is(b.tx.Err(), sip.ErrTransactionTransport) && !b.final && b.failover("transport error") {
				return
			}
			b.ended(b.tx.Err())
			return
		}
	}
}

// resetTimer sets a running or fired timer to d.
func resetTimer(timer *time.Timer, d time.Duration) {
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	timer.Reset(d)
}

// onResponse is RFC 3261 16.7 for one response of the branch.
func (b *branch) onResponse(res *sip.Response) {
	t := b.t
	t.e.svc.Metrics.Message("in", string(b.req.Method), res.StatusCode)
	res.RemoveHeader("Via") // ours
	if res.Via() == nil {
		return
	}
	t.restoreCSeq(res)
	code := res.StatusCode
	switch {
	case code == 100:
		t.mu.Lock()
		b.provisional = true
		send := b.cancelWanted && !b.cancelSent
		t.mu.Unlock()
		if send {
			b.cancel()
		}
	case code < 200:
		t.mu.Lock()
		b.provisional = true
		send := b.cancelWanted && !b.cancelSent
		relay := !t.finalSent
		t.mu.Unlock()
		if send {
			b.cancel()
		}
		if relay {
			t.recordDialog(b, res)
			t.respond(res, false)
		}
		t.rang(b)
	case code < 300:
		t.recordDialog(b, res)
		t.noteAnswer(b, res)
		t.respond(res, false)
		// Done only once the 2xx went up: a branch done earlier lets a
		// maybeFinish in between send a 408 for a transaction with no
		// other final response, ahead of the 2xx.
		t.mu.Lock()
		b.done = true
		t.mu.Unlock()
		if b.req.IsInvite() {
			t.cancelBranches(b, cancelledElsewhere)
		}
	default:
		if (code == 401 || code == 407) && b.answerChallenge(res) {
			return
		}
		t.mu.Lock()
		// A branch the proxy already ended (fr_timeout, Timer C, no
		// answer) has its final response: its 487 is not another one.
		ended := b.done
		b.done = true
		if !ended {
			t.finals = append(t.finals, res)
		}
		t.mu.Unlock()
		if ended {
			return
		}
		if code >= 600 && b.req.IsInvite() {
			t.cancelBranches(b, "")
		}
		t.maybeFinish()
	}
}

// timeout ends a branch that had no provisional response within
// fr_timeout, or no final response within Timer C after its last
// provisional. One that rang is cancelled and counts as 480; one that did
// not counts as 408 and is abandoned, to be cancelled if it rings late.
func (b *branch) timeout() {
	t := b.t
	t.mu.Lock()
	if b.done {
		t.mu.Unlock()
		return
	}
	b.done = true
	rang := b.provisional
	t.mu.Unlock()
	if b.req.IsInvite() && rang {
		b.cancel()
		res := sip.NewResponseFromRequest(t.req, 480, "Temporarily Unavailable", nil)
		b.answered(res) // it rang: the destination is alive
		t.addFinal(res)
	} else {
		b.answered(nil)
		t.addFinal(timeoutResponse(t.req))
		b.abandon("fr_timeout")
	}
	t.maybeFinish()
}

// ended is the client transaction's end: a branch that got no final
// response timed out or failed on the transport.
func (b *branch) ended(err error) {
	t := b.t
	if !b.markDone() {
		return
	}
	if errors.Is(err, sip.ErrTransactionTransport) {
		t.addFinal(sip.NewResponseFromRequest(t.req, 503, "Service Unavailable", nil))
	} else {
		t.addFinal(timeoutResponse(t.req))
	}
	t.maybeFinish()
}

// markDone marks the branch done, and reports whether it was not done
// already: only the first way it ends gives the transaction a final
// response.
func (b *branch) markDone() bool {
	b.t.mu.Lock()
	defer b.t.mu.Unlock()
	if b.done {
		return false
	}
	b.done = true
	return true
}

func timeoutResponse(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 408, "Request Timeout", nil)
	return res
}

// cancel sends CANCEL for the branch (RFC 3261 9.1): at once if it had a
// provisional response, else as soon as one arrives.
func (b *branch) cancel() {
	t := b.t
	t.mu.Lock()
	if b.cancelSent {
		t.mu.Unlock()
		return
	}
	if !b.provisional {
		b.cancelWanted = true
		t.mu.Unlock()
		return
	}
	b.cancelSent = true
	close(b.cancelling)
	reason := b.cancelReason
	t.mu.Unlock()

	c := cancelFor(b.req, reason)
	tx, err := t.e.sendRequest(c)
	if err != nil {
		t.log.Warn("CANCEL not sent", "error", err)
		return
	}
	t.e.svc.Metrics.Message("out", "CANCEL", 0)
	// The CANCEL needs nothing of the pipeline: its reader holds no
	// reference.
	drainClient(tx)
}

// cancelFor builds the CANCEL of a forwarded INVITE: same Request-URI, top
// Via, Call-ID, From, To, Route set and CSeq number (RFC 3261 9.1).
func cancelFor(inv *sip.Request, reason string) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.SipVersion = inv.SipVersion
	if v := inv.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	for _, r := range inv.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(r))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	for _, name := range []string{"From", "To", "Call-ID"} {
		if h := inv.GetHeader(name); h != nil {
			c.AppendHeader(sip.HeaderClone(h))
		}
	}
	if cs := inv.CSeq(); cs != nil {
		c.AppendHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.CANCEL})
	}
	if reason != "" {
		c.AppendHeader(sip.NewHeader("Reason", reason))
	}
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	return c
}
