package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// transaction is the proxy's side of one server transaction: the request,
// the pipeline it is pinned to, and its response context (RFC 3261 16.7):
// the branches it forked and the best final response so far.
type transaction struct {
	e         *Engine
	p         *pipeline.Pipeline
	req       *sip.Request // as received; read only
	tx        *sip.ServerTx
	src       pipeline.Source
	transport string
	log       *slog.Logger
	start     time.Time // when the request arrived
	traced    bool      // [log] trace is on for the request (decided before the stages)
	key       string
	// keyHash is txKeyHash of the request as received, if hashed: the
	// key completed remembers the transaction by.
	keyHash uint64
	hashed  bool
	// refused is set by refuse before it answers.
	refused bool
	// turn is the request's place in its call (callOrder), nil for none.
	turn *turn
	// loopHash is pipeline.LoopHash of the request as received, after
	// route processing: every branch carries it in its Via (RFC 3261
	// 16.6 step 8), so that the request coming back unchanged is a loop
	// and one retargeted to the proxy again is a spiral.
	loopHash string
	// mark2543 is the hash markRFC2543 put in the branch of an RFC 2543
	// INVITE ("" for any other request).
	mark2543 string
	ctx      *pipeline.Context
	// dialog is the dialog an in-dialog request was admitted in.
	dialog *dialogUse
	// flow is the connection an in-dialog request goes over, named by
	// our Route (nil for none).
	flow *pipeline.Flow

	mu         sync.Mutex
	branches   []*branch
	forwarding bool // branches are still being created
	finalSent  bool // a final response went upstream
	answered   bool // a 2xx went upstream
	cancelled  bool
	finals     []*sip.Response // non-2xx finals of the branches
	legs       []leg           // the dialogs its responses created
	rounds                     // serial forking of the whole transaction
	settled    sync.Once       // the engine stopped counting it as in flight
	// The keys admitSource and admitCallee counted ("" for nothing), and
	// whether they were given back.
	sourceKey, calleeKey string
	limitsReleased       bool

	// authUser is the Context's AuthUser once the request stages ran,
	// for the response stages; under mu.
	authUser string

	// refs counts what still needs the transaction's pipeline: the server
	// transaction and each branch's client transaction until sipgo ends
	// them, serve while it runs, a CANCEL while it is answered. The last
	// one out ends it.
	refs atomic.Int32
	// logAttrs and logger are log's handler and logger, kept in the
	// transaction rather than allocated for each one.
	logAttrs txLogHandler
	logger   slog.Logger

	// served is set once serve returned, and running counts the branches
	// whose run has not; both under mu, for shed.
	served  bool
	running int
}

// hold takes one more reference, unless the transaction has already
// ended (for a CANCEL that found it just before it did).
func (t *transaction) hold() bool {
	for {
		n := t.refs.Load()
		if n <= 0 {
			return false
		}
		if t.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unref drops one reference; the last one ends the transaction: it is
// taken off the in-flight count, out of CANCEL matching, and releases its
// pipeline (a retired pipeline is cleaned up once all its transactions
// ended).
func (t *transaction) unref() {
	if t.refs.Add(-1) != 0 {
		return
	}
	t.settle()
	t.e.lingering.Add(-1)
	t.endEarlyDialogs()
	if t.key != "" {
		t.e.invites.CompareAndDelete(t.key, t)
	}
	if t.mark2543 != "" {
		t.e.answered2xx2543.Delete(t.mark2543)
	}
	t.p.Release()
}

// settle moves the transaction from the engine's in-flight count to its
// lingering count: it has sent its final response, or ended. A graceful
// stop waits for the in-flight count to reach zero.
func (t *transaction) settle() {
	t.settled.Do(func() {
		t.e.active.Add(-1)
		t.e.lingering.Add(1)
		t.releaseLimits()
	})
}

// respond sends res upstream on the server transaction, after the response
// stages. local says whether the proxy made it. A transaction sends one
// final response: a later one (two branches ending at once, a CANCEL
// answered while the stages ran) is not sent, but for an INVITE's 2xx (RFC
// 3261 16.7): one after a non-2xx final goes statelessly, since sipgo's
// server transaction would swallow it.
func (t *transaction) respond(res *sip.Response, local bool) {
	stateless := false
	if res.StatusCode >= 200 {
		t.mu.Lock()
		sent, answered := t.finalSent, t.answered
		t.finalSent = true
		if res.StatusCode < 300 {
			t.answered = true
		}
		t.mu.Unlock()
		if res.StatusCode < 300 && !answered && t.mark2543 != "" {
			t.e.answered2xx2543.Store(t.mark2543, struct{}{})
		}
		if sent && (res.StatusCode >= 300 || !t.req.IsInvite()) {
			// RFC 3261 16.7 step 5: after a final response only an
			// INVITE's 2xx still goes up.
			t.log.Debug("a second final response not sent", "code", res.StatusCode)
			return
		}
		if !sent {
			t.endEarlyDialogs()
			t.dialogAnswered(res)
		}
		stateless = sent && !answered
	}
	t.runResponseStages(res, local)
	t.e.svc.Metrics.Message("out", string(t.req.Method), res.StatusCode)
	if stateless {
		// A final went up before (sipgo's 487 to a CANCEL, which
		// settles nothing itself): this one ends the flight as well.
		t.e.writeStateless(res)
		t.settle()
		return
	}
	if res.StatusCode >= 200 {
		// The limits first: a caller that gets the final at once may
		// send its next INVITE before settle would have run.
		t.releaseLimits()
		defer t.settle()
	}
	if res.IsSuccess() && t.req.Method == sip.REGISTER {
		defer t.noteBinding()
	}
	var sent bool
	var err error
	if res.StatusCode >= 200 && t.transport == "UDP" && t.hashed && !t.refused && (res.IsSuccess() || !t.req.IsInvite()) {
		// Remembered before it is sent, so that a retransmission finds
		// it however late this goroutine runs on: a non-INVITE's is sent
		// from the bytes kept (writeKept), an INVITE's 2xx by sipgo,
		// whose Timer L starts with the send. An INVITE answered
		// otherwise stays with sipgo until its ACK; a refusal is
		// remembered by refusals, within their bound.
		kept := t.e.completed.add(t.keyHash, t.req.Method, res, time.Now())
		if kept != nil {
			sent, err = writeKept(t.tx, kept, res.Destination())
		}
	}
	if !sent {
		err = t.tx.Respond(res)
		if err == nil && res.StatusCode >= 300 && t.req.IsInvite() && t.transport == "UDP" {
			t.retransmitFinal(res)
		}
	}
	if err != nil {
		switch {
		case sip.IsReliable(t.transport):
			t.resendOverStream(res)
		case res.IsSuccess():
			t.e.writeStateless(res)
		default:
			t.log.Debug("response not sent", "code", res.StatusCode, "error", err)
		}
		if res.IsSuccess() {
			// The server transaction is gone (TCP ends it at once): a 2xx
			// still had to reach the caller. If it is not gone, sipgo
			// keeps it in Accepted with no timer after a failed write:
			// end it, or it holds the transaction for good.
			t.tx.Terminate()
		}
	}
}

func (t *transaction) runResponseStages(res *sip.Response, local bool) {
	if local {
		t.p.StampServer(res)
	}
	rc := pipeline.NewResponseContext(t.p, t.req, res, local, t.src, t.transport)
	rc.Log = t.log
	t.mu.Lock()
	rc.AuthUser = t.authUser
	t.mu.Unlock()
	if err := t.p.ServeResponse(rc, t.responseTrace(rc)); err != nil {
		t.log.Error("response stage failed", "error", err, "code", res.StatusCode)
	}
}

// writeStateless sends a response by its top Via, with no transaction
// (2xx retransmissions after the server transaction ended).
func (e *Engine) writeStateless(res *sip.Response) {
	via := res.Via()
	if via == nil {
		return
	}
	res.SetDestination("")
	res.SetTransport(via.Transport)
	if err := e.tp.WriteMsg(res); err != nil {
		e.log.Debug("stateless response not sent", "code", res.StatusCode, "error", err)
	}
}

func (t *transaction) addFinal(res *sip.Response) {
	t.mu.Lock()
	t.finals = append(t.finals, res)
	t.mu.Unlock()
}

// cancelBranches cancels every pending branch but except.
func (t *transaction) cancelBranches(except *branch, reason string) {
	t.mu.Lock()
	var pending []*branch
	for _, b := range t.branches {
		if b != except && !b.done {
			b.cancelReason = reason
			pending = append(pending, b)
		}
	}
	t.mu.Unlock()
	for _, b := range pending {
		b.cancel()
	}
}

// cancel is the caller's CANCEL reaching this transaction (RFC 3261 16.10).
// local says whether the proxy answers the INVITE with 487 itself (sipgo
// did it already when it handled the CANCEL).
func (t *transaction) cancel(req *sip.Request, local bool) {
	t.mu.Lock()
	if t.cancelled {
		t.mu.Unlock()
		return
	}
	t.cancelled = true
	if !local {
		t.finalSent = true
	}
	reason := ""
	if h := req.GetHeader("Reason"); h != nil {
		reason = h.Value()
	}
	pending := []*branch{}
	for _, b := range t.branches {
		if !b.done {
			b.cancelReason = reason
			pending = append(pending, b)
		}
	}
	idle := len(t.branches) == 0 && !t.forwarding && !t.finalSent
	t.mu.Unlock()
	for _, b := range pending {
		b.cancel()
	}
	if idle && local {
		t.respond(sip.NewResponseFromRequest(t.req, 487, "Request Terminated", nil), true)
	}
	if !local {
		t.maybeFinish()
	}
}

// maybeFinish sends the best final response once every branch is done.
func (t *transaction) maybeFinish() {
	t.mu.Lock()
	if t.forwarding {
		t.mu.Unlock()
		return
	}
	for _, b := range t.branches {
		if !b.done {
			t.mu.Unlock()
			return
		}
	}
	if !t.finalSent && t.nextRound() {
		t.mu.Unlock()
		return
	}
	if t.finalSent {
		// A final response went upstream already (sipgo's 487 to the
		// caller's CANCEL, cancel, perhaps while the next round was looked
		// up): with its branches done, the transaction is in flight no more.
		t.mu.Unlock()
		t.settle()
		return
	}
	t.stopRingTimer()
	best := bestResponse(t.finals)
	cancelled := t.cancelled
	t.mu.Unlock()
	if best == nil {
		if !t.req.IsInvite() {
			return
		}
		best = timeoutResponse(t.req)
	}
	if cancelled && (best.StatusCode == 408 || best.StatusCode == 480 || best.StatusCode == 430) {
		best = sip.NewResponseFromRequest(t.req, 487, "Request Terminated", nil)
	}
	if best.StatusCode == 408 && !t.req.IsInvite() {
		// RFC 4320: no 408 upstream for a non-INVITE; it times out at the
		// caller. Until the caller's Timer F (64*T1 after it sent the
		// request) the server transaction stays, to absorb retransmissions
		// that would otherwise be forwarded as new requests.
		t.settle()
		wait := time.Until(t.start.Add(64 * sip.T1))
		if wait < sip.Timer_J {
			wait = sip.Timer_J
		}
		time.AfterFunc(wait, t.tx.Terminate)
		return
	}
	local := best.Via() == nil || best.Source() == ""
	t.respond(best, local)
}

// relay2xxRetransmission sends a 2xx retransmission from downstream on to
// the caller.
func (t *transaction) relay2xxRetransmission(res *sip.Response) {
	res = copyResponse(res)
	res.RemoveHeader("Via")
	if res.Via() == nil {
		return
	}
	t.restoreCSeq(res)
	t.runResponseStages(res, false)
	if err := t.tx.Respond(res); err != nil {
		t.e.writeStateless(res)
	}
}

// shedIfDone drops, with t.mu held, what the transaction needs only while
// it works, once it is done: a final response went upstream, serve
// returned and no branch is running. sipgo keeps its transactions a while
// longer (setLinger), and their callbacks keep the transaction: a 2xx
// retransmission still needs its request, pipeline and log, not the
// stages' Context (the request as they changed it, the targets), the
// branches or their final responses.
func (t *transaction) shedIfDone() {
	if !t.served || t.running > 0 || !t.finalSent || t.forwarding {
		return
	}
	t.ctx, t.branches, t.finals = nil, nil, nil
	t.next, t.nextReq = nil, nil
}
