package calllog

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// linger is how long a call stays known after it ended, or after an answer
// that asks the caller to send the INVITE again (401, 407, 3xx, 422): long
// enough for the INVITE with credentials, a late BYE of the other party or
// a retransmitted 2xx (64*T1).
const linger = 32 * time.Second

// state is where a call is.
type state int

const (
	// trying: the initial INVITE was seen, no final response yet.
	trying state = iota
	// answered: a 2xx to the initial INVITE went upstream.
	answered
	// retrying: a final response asked the caller to send the INVITE
	// again; the call waits for it for linger.
	retrying
	// ended: the call is over and recorded; endedCalls remembers it for
	// linger, to absorb its late messages.
	ended
)

// The parties of a call.
const (
	caller = 0
	callee = 1
)

// offer is the session description of a re-INVITE, waiting for its 2xx.
type offer struct {
	from int
	sdp  media
	cseq uint32
}

// callKey is what tells a call apart: the Call-ID and the caller's tag of
// its initial INVITE.
type callKey struct {
	callID, fromTag string
}

// call is one call: one initial INVITE, keyed by its Call-ID and the
// caller's tag, and the dialog its first 2xx made.
type call struct {
	key    callKey
	callID string
	// tags are the dialog's: the caller's From tag, the callee's To tag
	// (from the first 2xx; "" before).
	tags [2]string
	// users are the caller's From user and the callee's To user.
	users [2]string
	// authUser is the user the auth stage authenticated the INVITE as.
	authUser string
	// attempts are the branches and forwards of its INVITE (nil outside
	// the engine).
	attempts *pipeline.Attempts

	state state
	rang  bool
	// start is when the INVITE arrived, answer when the first 2xx went
	// upstream.
	start, answer time.Time
	// byeBy is the party that sent BYE before the answer.
	byeBy string
	// transfer is the target of the last accepted REFER.
	transfer string

	// sdp is each party's last session description; video says whether
	// both sides' last ones have video.
	sdp   [2]media
	video bool
	// pending is the offer of a re-INVITE (or of the initial INVITE)
	// waiting for its 2xx, if hasPending.
	pending    offer
	hasPending bool
	// ackCSeq is the CSeq of a re-INVITE whose ACK is awaited.
	ackCSeq uint32

	// retryCode is the final response that put the call in the retrying
	// state, retryAt when it went upstream, retryCSeq the CSeq of the
	// INVITE it answered.
	retryCode int
	retryAt   time.Time
	retryCSeq uint32

	// created and until are on the process clock: created bounds the
	// call's life (max_call), until ends its wait for the INVITE sent
	// again (retrying).
	created time.Time
	until   time.Time
	// older and newer link the tracker's calls in the order they came.
	older, newer *call
}

// sink is where a tracker's events and records go: the calllog stage that
// serves the message in hand, or for the sweeper the newest stage attached
// to the tracker.
type sink interface {
	event(e event)
	record(r record)
}

// tracker is the state of the calls of one call log: a value of
// pipeline.Services.Shared, so that the stage of every later pipeline
// (after a reload) knows the calls in progress. A sweeper drops the calls
// that ended or outlived max_call from its construction to its Close, the
// last pipeline's release. Its methods take the lock and hand events to a sink while
// holding it, so the lines of one call are written in order; they read
// what they need of the message (its dialog, its SDP) before they take it.
type tracker struct {
	mu       sync.Mutex
	calls    map[callKey]*call
	ended    endedCalls
	maxCall  time.Duration
	maxCalls int
	log      *slog.Logger
	// oldest and newest are the ends of the list of the calls, in the
	// order they came, linked through the calls themselves, so that
	// tracking a call allocates only the call.
	oldest, newest *call
	// attached are the stages attached to the tracker, newest last: the
	// limits and the logger are the newest's, and the sweeper records the
	// calls it drops through it.
	attached []attachment
	stop     chan struct{}
	done     chan struct{}
}

// attachment is a stage attached to a tracker, with its settings.
type attachment struct {
	sink     sink
	maxCall  time.Duration
	maxCalls int
	log      *slog.Logger
}

// newTracker returns a tracker with no calls and starts its sweeper, which
// runs often enough for maxCall.
func newTracker(maxCall time.Duration) *tracker {
	t := &tracker{calls: map[callKey]*call{}, ended: newEndedCalls(), stop: make(chan struct{}), done: make(chan struct{})}
	interval := 5 * time.Second
	if half := maxCall / 2; half < interval {
		interval = max(half, 10*time.Millisecond)
	}
	go t.run(interval, t.stop, t.done)
	return t
}

// attach makes s the sink of the sweeper, with its limits and logger.
func (t *tracker) attach(s sink, maxCall time.Duration, maxCalls int, log *slog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.attached = append(t.attached, attachment{s, maxCall, maxCalls, log})
	t.maxCall, t.maxCalls, t.log = maxCall, maxCalls, log
}

// detach takes s off: the stage is cleaned up, its files may be closed.
// The limits and the logger go back to the newest stage left's, so that
// a stage of a build that failed changes nothing.
func (t *tracker) detach(s sink) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.attached = slices.DeleteFunc(t.attached, func(a attachment) bool { return a.sink == s })
	if n := len(t.attached); n > 0 {
		a := t.attached[n-1]
		t.maxCall, t.maxCalls, t.log = a.maxCall, a.maxCalls, a.log
	}
}

// Calls returns the calls in progress (tried or answered), for the admin
// API and the active-calls gauge.
func (t *tracker) Calls() []pipeline.CallInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []pipeline.CallInfo
	for _, c := range t.calls {
		var st string
		switch c.state {
		case trying:
			st = "trying"
			if c.rang {
				st = "ringing"
			}
		case answered:
			st = "answered"
		default:
			continue
		}
		tries, forwards := c.attempts.Copy()
		out = append(out, pipeline.CallInfo{CallID: c.callID, Caller: c.users[caller], Callee: c.users[callee], State: st, Start: c.start, Answered: c.answer,
			ForwardedFrom: c.attempts.ForwardedFrom(), Forwards: forwards, Attempts: tries})
	}
	return out
}

var _ pipeline.CallLister = (*tracker)(nil)

// Close stops the sweeper; the pool calls it when the last pipeline that
// holds the tracker releases it. It is safe to call more than once.
func (t *tracker) Close() error {
	t.mu.Lock()
	stop, done := t.stop, t.done
	t.stop, t.done = nil, nil
	t.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// run sweeps the calls every interval until stop is closed.
func (t *tracker) run(interval time.Duration, stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			t.sweep(now)
		}
	}
}

// sweep forgets the calls that lingered long enough and drops those older
// than max_call.
func (t *tracker) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var s sink
	if n := len(t.attached); n > 0 {
		s = t.attached[n-1].sink
	}
	t.ended.sweep(now)
	for c := t.oldest; c != nil; {
		next := c.newer
		switch {
		case c.state == retrying:
			if now.After(c.until) {
				t.drop(s, c, now, "")
			}
		case now.Sub(c.created) > t.maxCall:
			t.drop(s, c, now, "max_call")
		}
		c = next
	}
}

// Len returns the number of calls known, those that ended not counted.
func (t *tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// drop forgets c. A call still in progress is recorded as expired, with a
// warning that says why; a call that waited in vain for its INVITE to be
// sent again is recorded as failed with the response that ended it.
func (t *tracker) drop(s sink, c *call, now time.Time, why string) {
	delete(t.calls, c.key)
	t.unlink(c)
	r := c.record()
	switch c.state {
	case retrying:
		r.end, r.disposition, r.code = c.retryAt, dispFailed, c.retryCode
	default:
		r.end, r.disposition = now, dispExpired
		if t.log != nil {
			limit := any(t.maxCall.String())
			if why == "max_calls" {
				limit = t.maxCalls
			}
			t.log.Warn("calllog: dropping a call that did not end", "reason", why, "limit", limit,
				"call_id", c.callID, "caller", c.users[caller], "callee", c.users[callee], "start", c.start)
		}
	}
	if s != nil {
		s.record(r)
	}
}

// insert adds c, which starts at at, dropping the oldest calls past
// max_calls (their records end at at).
func (t *tracker) insert(s sink, c *call, at time.Time) {
	for t.maxCalls > 0 && len(t.calls) >= t.maxCalls && t.oldest != nil {
		t.drop(s, t.oldest, at, "max_calls")
	}
	c.created = time.Now()
	t.link(c)
	t.calls[c.key] = c
}

// link adds c to the list of calls, as the newest.
func (t *tracker) link(c *call) {
	c.older, c.newer = t.newest, nil
	if t.newest != nil {
		t.newest.newer = c
	} else {
		t.oldest = c
	}
	t.newest = c
}

// unlink takes c out of the list of calls.
func (t *tracker) unlink(c *call) {
	if c.older != nil {
		c.older.newer = c.newer
	} else {
		t.oldest = c.newer
	}
	if c.newer != nil {
		c.newer.older = c.older
	} else {
		t.newest = c.older
	}
	c.older, c.newer = nil, nil
}

// finish ends c and records it; from then on only its key's hash is
// remembered (endedCalls).
func (t *tracker) finish(s sink, c *call, r record) {
	c.state = ended
	c.hasPending, c.ackCSeq = false, 0
	s.record(r)
	delete(t.calls, c.key)
	t.unlink(c)
	t.ended.add(c.key, time.Now())
}

// record returns c's record, without its end.
func (c *call) record() record {
	return record{
		callID:   c.callID,
		caller:   c.users[caller],
		callee:   c.users[callee],
		start:    c.start,
		answer:   c.answer,
		endedBy:  "",
		transfer: c.transfer,
		authUser: c.authUser,
		attempts: c.attempts,
	}
}

// ev returns an event of c at time at, by party from (or by no one, -1).
func (c *call) ev(k kind, at time.Time, from int) event {
	e := event{at: at, kind: k, callID: c.callID, caller: c.users[caller], callee: c.users[callee]}
	if from >= 0 {
		e.by, e.other = c.users[from], c.users[1-from]
	}
	return e
}

// commit makes m party p's session description.
func (c *call) commit(p int, m media) {
	if !m.known {
		return
	}
	c.sdp[p] = m
	if c.sdp[1-p].known {
		c.video = c.sdp[caller].video && c.sdp[callee].video
	}
}

// tag returns the tag parameter of a From or To header.
func tag(params sip.HeaderParams) string {
	for _, kv := range params {
		if strings.EqualFold(kv.K, "tag") {
			return kv.V
		}
	}
	return ""
}

// dialogOf returns the Call-ID and the From and To tags of a message.
func dialogOf(m sip.Message) (callID, fromTag, toTag string, ok bool) {
	id, from, to := m.CallID(), m.From(), m.To()
	if id == nil || from == nil || to == nil {
		return "", "", "", false
	}
	return id.Value(), tag(from.Params), tag(to.Params), true
}

// userOf returns the user part of a URI (its host when it has none).
func userOf(u *sip.Uri) string {
	if u.User != "" {
		return u.User
	}
	return u.Host
}

// lookup finds the call of an in-dialog message and the party that sent
// it. A message of another dialog of a known call (a second 2xx of a
// forked INVITE), or of a call that ended, gives no call but known.
func (t *tracker) lookup(callID, fromTag, toTag string) (c *call, from int, known bool) {
	if c := t.calls[callKey{callID, fromTag}]; c != nil {
		if c.tags[callee] == "" || toTag == c.tags[callee] {
			return c, caller, true
		}
		return nil, 0, true
	}
	if t.ended.has(callID, fromTag) {
		return nil, 0, true
	}
	if c := t.calls[callKey{callID, toTag}]; c != nil {
		if c.tags[callee] == "" || fromTag == c.tags[callee] {
			return c, callee, true
		}
		return nil, 0, true
	}
	return nil, 0, t.ended.has(callID, toTag)
}

// newCall returns the call an initial INVITE starts.
func newCall(req *sip.Request, callID, fromTag string, at time.Time) *call {
	c := &call{key: callKey{callID, fromTag}, callID: callID, start: at}
	c.tags[caller] = fromTag
	c.users[caller] = userOf(&req.From().Address)
	c.users[callee] = userOf(&req.To().Address)
	return c
}

// invite handles an initial INVITE (no To tag), authenticated as authUser
// ("" for none): the first one of a call logs INVITE; one sent again after
// a 401, 407, 3xx or 422 continues the call; others (retransmissions)
// change nothing.
func (t *tracker) invite(s sink, req *sip.Request, authUser string, attempts *pipeline.Attempts, at time.Time) {
	callID, fromTag, _, ok := dialogOf(req)
	if !ok {
		return
	}
	o := offer{from: caller, sdp: sdpOf(req)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.calls[callKey{callID, fromTag}]; c != nil {
		if c.state == retrying {
			c.state = trying
			c.pending, c.hasPending = o, true
			c.authUser = authUser
			c.attempts = attempts
		}
		return
	}
	if t.ended.has(callID, fromTag) {
		return
	}
	c := newCall(req, callID, fromTag, at)
	c.authUser = authUser
	c.attempts = attempts
	c.pending, c.hasPending = o, true
	t.insert(s, c, at)
	s.event(c.ev(evInvite, at, -1))
}

// retryCode reports whether a final response to an INVITE is one after
// which the caller sends the INVITE again with the same Call-ID and From
// tag (a redirection, a challenge, 422 Session Interval Too Small).
func retryCode(code int) bool {
	return code/100 == 3 || code == 401 || code == 407 || code == 422
}

// inviteResponse handles a response to an initial INVITE, authenticated
// as authUser, going upstream: the first 18x logs RINGING, the first 2xx
// CALL STARTED, a final failure ends the call. A response to the INVITE
// sent again after a challenge that a stage before this one answered (the
// auth stage's 403) continues the call, as that INVITE would have.
func (t *tracker) inviteResponse(s sink, req *sip.Request, res *sip.Response, authUser string, local bool, at time.Time) {
	code := res.StatusCode
	if code < 180 {
		return
	}
	callID, fromTag, _, ok := dialogOf(req)
	if !ok {
		return
	}
	var answer media
	if code/100 == 2 {
		answer = sdpOf(res)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.calls[callKey{callID, fromTag}]
	if c == nil && t.ended.has(callID, fromTag) {
		return
	}
	if c == nil {
		// The INVITE did not reach this stage (a stage before it
		// answered, or a reload added the stage during the call).
		c = newCall(req, callID, fromTag, at)
		c.authUser = authUser
		c.pending, c.hasPending = offer{from: caller, sdp: sdpOf(req)}, true
		t.insert(s, c, at)
		s.event(c.ev(evInvite, at, -1))
	}
	if c.state == retrying && cseqOf(req) > c.retryCSeq {
		c.state, c.authUser = trying, authUser
	}
	if c.state != trying {
		return
	}
	switch {
	case code < 200:
		if !c.rang {
			c.rang = true
			s.event(c.ev(evRinging, at, -1))
		}
	case code < 300:
		_, _, toTag, _ := dialogOf(res)
		c.state, c.answer, c.tags[callee] = answered, at, toTag
		if c.hasPending {
			c.commit(c.pending.from, c.pending.sdp)
			c.hasPending = false
		}
		c.commit(callee, answer)
		s.event(c.ev(evStarted, at, -1))
	case retryCode(code):
		c.state, c.until = retrying, time.Now().Add(linger)
		c.retryCode, c.retryAt, c.retryCSeq = code, at, cseqOf(req)
	default:
		t.failed(s, c, code, res.Reason, local, at)
	}
}

// failed ends an unanswered call with its final response.
func (t *tracker) failed(s sink, c *call, code int, reason string, local bool, at time.Time) {
	e := c.ev(evRejected, at, -1)
	e.code = code
	r := c.record()
	r.end, r.code = at, code
	switch {
	case code == 487:
		e.kind, r.disposition = evCancelled, dispCancelled
		e.by = c.users[caller]
		if c.byeBy != "" {
			e.by = c.byeBy
		}
		r.endedBy = e.by
	case code == 408 || code == 480:
		e.kind, r.disposition = evNoAnswer, dispNoAnswer
	case local || code/100 == 5:
		e.kind, r.disposition = evFailed, dispFailed
		e.reason = reason
	case code == 486 || code == 600:
		e.by, r.disposition, r.endedBy = c.users[callee], dispBusy, c.users[callee]
	default:
		e.by, r.disposition, r.endedBy = c.users[callee], dispRejected, c.users[callee]
	}
	s.event(e)
	t.finish(s, c, r)
}

// inCall runs fn, under the lock, on the answered call of an in-dialog
// request, with the party that sent it; without such a call it does
// nothing.
func (t *tracker) inCall(req *sip.Request, fn func(c *call, from int)) {
	callID, fromTag, toTag, ok := dialogOf(req)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, from, _ := t.lookup(callID, fromTag, toTag); c != nil && c.state == answered {
		fn(c, from)
	}
}

// cseqOf returns the CSeq number of a request (0 without one).
func cseqOf(req *sip.Request) uint32 {
	if h := req.CSeq(); h != nil {
		return h.SeqNo
	}
	return 0
}

// reinvite handles an INVITE in an answered call: it logs SWITCH INVITE,
// or what its SDP says against the sender's last one (HOLD, RESUME, VIDEO
// ON, VIDEO OFF), and waits for its ACK.
func (t *tracker) reinvite(s sink, req *sip.Request, at time.Time) {
	m, cseq := sdpOf(req), cseqOf(req)
	t.inCall(req, func(c *call, from int) {
		k := classify(c.sdp[from], c.video, m)
		c.pending, c.hasPending = offer{from: from, sdp: m, cseq: cseq}, true
		c.ackCSeq = cseq
		s.event(c.ev(k, at, from))
	})
}

// reinviteResponse handles a final response to a re-INVITE: a 2xx makes
// its offer and answer the parties' session descriptions; another final
// response drops them.
func (t *tracker) reinviteResponse(req *sip.Request, res *sip.Response) {
	if res.StatusCode < 200 {
		return
	}
	var answer media
	if res.StatusCode < 300 {
		answer = sdpOf(res)
	}
	cseq := cseqOf(req)
	t.inCall(req, func(c *call, from int) {
		if res.StatusCode >= 300 {
			if c.ackCSeq == cseq {
				c.ackCSeq = 0
			}
			c.hasPending = false
			return
		}
		if c.hasPending && c.pending.cseq == cseq {
			c.commit(c.pending.from, c.pending.sdp)
			c.hasPending = false
		}
		c.commit(1-from, answer)
	})
}

// ack handles an ACK in a call: the ACK of a re-INVITE logs SWITCH ACK.
func (t *tracker) ack(s sink, req *sip.Request, at time.Time) {
	m, cseq := sdpOf(req), cseqOf(req)
	t.inCall(req, func(c *call, from int) {
		c.commit(from, m)
		if c.ackCSeq != 0 && cseq == c.ackCSeq {
			c.ackCSeq = 0
			s.event(c.ev(evSwitchAck, at, from))
		}
	})
}

// bye handles a BYE: in an answered call it logs CALL ENDED and records
// the call; before the answer it notes who hung up (the 487 ends the
// call); for a call never seen it logs BYE ... Unknown call.
func (t *tracker) bye(s sink, req *sip.Request, at time.Time) {
	callID, fromTag, toTag, ok := dialogOf(req)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, from, known := t.lookup(callID, fromTag, toTag)
	if c == nil {
		if !known {
			u, v := userOf(&req.From().Address), userOf(&req.To().Address)
			s.event(event{at: at, kind: evUnknownBye, callID: callID, caller: u, callee: v, by: u})
		}
		return
	}
	switch c.state {
	case trying:
		c.byeBy = c.users[from]
	case answered:
		e := c.ev(evEnded, at, from)
		if at.After(c.answer) {
			e.duration = at.Sub(c.answer)
		}
		s.event(e)
		r := c.record()
		r.end, r.disposition, r.endedBy = at, dispAnswered, c.users[from]
		if r.end.Before(r.answer) {
			r.end = r.answer
		}
		t.finish(s, c, r)
	}
}

// referResponse handles a 2xx to a REFER in a call: it logs TRANSFER with
// the Refer-To target, which the call's record keeps.
func (t *tracker) referResponse(s sink, req *sip.Request, at time.Time) {
	target := ""
	if rt := req.ReferTo(); rt != nil {
		target = userOf(&rt.Address)
	}
	t.inCall(req, func(c *call, from int) {
		c.transfer = target
		e := c.ev(evTransfer, at, from)
		e.target = target
		s.event(e)
	})
}
