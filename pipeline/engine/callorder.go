package engine

import (
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The messages of one call leave the proxy in the order they reached its
// sockets. sipgo hands each message to a goroutine of its own, so the order
// is lost before the engine sees it; onMessage, on the socket's reader,
// still sees it, and gives each message a turn in its call (by Call-ID):
//
//   - A request waits, before its dialog check and its stages, for every
//     earlier message of its call to leave: ACK then BYE, a 200 then the
//     NOTIFY behind it. It sees the call as those messages left it (the
//     dialog a 200 recorded; a call log, the ACK before the BYE), and what
//     its stages decide leaves in order.
//   - A response waits, before it is relayed, for the earlier responses of
//     its call (of the same branch, branch.take; of another, awaitResponses:
//     a fork's 180 and the other branch's 200), never for a request, so that
//     a stage blocked on DNS or a store holds back neither its call's
//     responses nor its CANCEL (which has no turn at all).
//
// A turn ends when its message is handed to a transaction or a socket, or
// dropped; never later, so that nothing waits for another message of its
// call (an INVITE's turn ends when its first branch is sent, not at its final
// response).
//
// Every wait ends. A message waits only for messages that arrived before
// it (a response only for responses), so no wait comes back to itself. A
// request's turn ends when onRequest returns at the latest. A response's
// turn ends when its branch's run handles it, on its own pass-up or on a
// later one of the branch (take), or when the branch closes: run returns
// at the branch's final response, the end of its client transaction, or
// its timers. The responses sipgo never passes up (a 1xx after the 2xx, a
// 2xx retransmission, a response to no transaction) come after one of
// those, so their turns end at the close right after it. Only the wait
// for a request sipgo may never hand over has a time limit (enterTimeout):
// one on the others would let a message overtake one that is only slow, a
// stage waiting on a store.

// orderShards spreads the calls over locks.
const orderShards = 64

// enterTimeout bounds the wait for an earlier request that sipgo never
// handed to the engine (its server transaction could not be made).
const enterTimeout = time.Second

// callOrder holds the turns of the calls that have messages in the proxy.
type callOrder struct {
	seed   maphash.Seed
	shards [orderShards]orderShard
}

type orderShard struct {
	mu    sync.Mutex
	calls map[string][]*turn // Call-ID -> turns not yet ended, in arrival order
	// requests holds a request's turn by a hash of its server transaction
	// key, from its arrival until its transaction ends (nil once the turn
	// ended): a message whose key is here is a retransmission, or the ACK
	// of a non-2xx response, that sipgo's transaction absorbs.
	requests map[uint64]*turn
}

// turn is one message's place in its call.
type turn struct {
	callID  string
	request bool
	arrived time.Time
	key     uint64      // of a request's server transaction
	entered atomic.Bool // a request reached the engine (onRequest)
	// done is closed when the turn ends; before makes it, under the
	// shard's lock, once a later message waits: most turns have no one
	// waiting, and no channel.
	done  chan struct{}
	ended bool // under the shard's lock
	// matchable, for an INVITE, is closed once a CANCEL can find its
	// transaction (serve stored it), or when its turn ends.
	matchable chan struct{}
	matched   bool // under the shard's lock
}

func newCallOrder() *callOrder {
	o := &callOrder{seed: maphash.MakeSeed()}
	for i := range o.shards {
		o.shards[i].calls = map[string][]*turn{}
		o.shards[i].requests = map[uint64]*turn{}
	}
	return o
}

func (o *callOrder) shard(callID string) *orderShard {
	return &o.shards[maphash.String(o.seed, callID)%orderShards]
}

// arrivedRequest gives req a turn, unless it has none to take: a CANCEL
// (it waits for nothing and nothing waits for it), a message without a
// Call-ID or transaction key, or one sipgo's transaction layer will absorb.
func (o *callOrder) arrivedRequest(req *sip.Request) {
	id := callID(req)
	if id == "" || req.IsCancel() {
		return
	}
	h, ok := o.txKey(req)
	if !ok {
		return
	}
	s := o.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[h]; ok {
		return
	}
	t := &turn{callID: id, request: true, arrived: time.Now(), key: h}
	if req.IsInvite() {
		t.matchable = make(chan struct{})
	}
	s.requests[h] = t
	s.calls[id] = append(s.calls[id], t)
}

// arrivedResponse gives a response a turn in its call.
func (o *callOrder) arrivedResponse(res *sip.Response) *turn {
	id := callID(res)
	if id == "" {
		return nil
	}
	t := &turn{callID: id}
	s := o.shard(id)
	s.mu.Lock()
	s.calls[id] = append(s.calls[id], t)
	s.mu.Unlock()
	return t
}

// enter is a request reaching the engine with its server transaction's
// key (txKey, taken before the engine restores the Via the read filter
// marked): it returns the request's turn (nil when it has none), and keeps
// the key until ended is called, so that retransmissions get none.
func (o *callOrder) enter(req *sip.Request, h uint64) *turn {
	id := callID(req)
	if id == "" || req.IsCancel() {
		return nil
	}
	s := o.shard(id)
	s.mu.Lock()
	t, ok := s.requests[h]
	if !ok {
		s.requests[h] = nil
	}
	s.mu.Unlock()
	if t != nil {
		t.entered.Store(true)
	}
	return t
}

// ended forgets the key of a request's server transaction, which ended.
func (o *callOrder) ended(req *sip.Request, h uint64) {
	id := callID(req)
	if id == "" {
		return
	}
	s := o.shard(id)
	s.mu.Lock()
	t := s.requests[h]
	delete(s.requests, h)
	s.mu.Unlock()
	o.end(t)
}

// await waits until every message of t's call that arrived before it has
// left: t's message is next. A request that sipgo never handed over is
// waited for enterTimeout after its arrival at most; the other turns end
// by themselves (see the top of this file).
func (o *callOrder) await(t *turn) {
	for _, p := range o.before(t, true) {
		if !p.request || p.entered.Load() {
			<-p.done
			continue
		}
		timer := time.NewTimer(time.Until(p.arrived.Add(enterTimeout)))
		select {
		case <-p.done:
		case <-timer.C:
			if p.entered.Load() {
				<-p.done
			}
		}
		timer.Stop()
	}
}

// awaitResponses waits until every response of t's call that arrived
// before it has left. Responses wait only for responses: a request never
// waits for a later message, so no wait can come back to t; and each of
// those responses is handled by its branch's run or ended by its close.
func (o *callOrder) awaitResponses(t *turn) {
	for _, p := range o.before(t, false) {
		<-p.done
	}
}

// before returns the turns of t's call that arrived before it and have
// not ended: all of them, or with requests false only the responses'.
func (o *callOrder) before(t *turn, requests bool) []*turn {
	if t == nil {
		return nil
	}
	s := o.shard(t.callID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.ended {
		return nil
	}
	var out []*turn
	for _, p := range s.calls[t.callID] {
		if p == t {
			return out
		}
		if requests || !p.request {
			if p.done == nil {
				p.done = make(chan struct{})
			}
			out = append(out, p)
		}
	}
	return nil // t is not in its call: nothing to wait for
}

// end ends t: its message left, or was dropped.
func (o *callOrder) end(t *turn) {
	if t == nil {
		return
	}
	s := o.shard(t.callID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.ended {
		return
	}
	t.ended = true
	if t.done != nil {
		close(t.done)
	}
	t.match()
	if t.request && s.requests[t.key] == t {
		s.requests[t.key] = nil // the key stays until the transaction ends
	}
	turns := s.calls[t.callID]
	for i, p := range turns {
		if p == t {
			turns = slices.Delete(turns, i, i+1) // before copies what it returns
			break
		}
	}
	if len(turns) == 0 {
		delete(s.calls, t.callID)
	} else {
		s.calls[t.callID] = turns
	}
}

// matched says t's INVITE can be found by a CANCEL now.
func (o *callOrder) matched(t *turn) {
	if t == nil {
		return
	}
	s := o.shard(t.callID)
	s.mu.Lock()
	t.match()
	s.mu.Unlock()
}

// match closes t.matchable once; the shard's lock is held.
func (t *turn) match() {
	if t.matchable != nil && !t.matched {
		t.matched = true
		close(t.matchable)
	}
}

// awaitInvite is for a CANCEL that found no INVITE to cancel: when the
// INVITE it names arrived before it but is still on its way to the engine
// (the read filter takes a CANCEL on the socket's reader, before sipgo
// hands the INVITE over), it waits until a CANCEL can find it, for
// enterTimeout after the INVITE's arrival at most.
func (o *callOrder) awaitInvite(cancel *sip.Request) {
	id := callID(cancel)
	if id == "" || cancel.CSeq() == nil {
		return
	}
	inv := cancel.Clone()
	inv.CSeq().MethodName = sip.INVITE
	h, ok := o.txKey(inv)
	if !ok {
		return
	}
	s := o.shard(id)
	s.mu.Lock()
	t := s.requests[h]
	s.mu.Unlock()
	if t == nil || t.matchable == nil {
		return // none, or its turn ended: serve has stored it
	}
	timer := time.NewTimer(time.Until(t.arrived.Add(enterTimeout)))
	defer timer.Stop()
	select {
	case <-t.matchable:
	case <-timer.C:
	}
}

// sweep ends the turns of requests that sipgo never handed to the engine
// within 64*T1, and forgets their keys.
func (o *callOrder) sweep(now time.Time) {
	for i := range o.shards {
		s := &o.shards[i]
		var stale []*turn
		s.mu.Lock()
		for h, t := range s.requests {
			if t != nil && !t.entered.Load() && now.Sub(t.arrived) > 64*sip.T1 {
				delete(s.requests, h)
				stale = append(stale, t)
			}
		}
		s.mu.Unlock()
		for _, t := range stale {
			o.end(t)
		}
	}
}

// txKey is the hash of the key of req's server transaction: every turn
// is kept under it, on arrival, entry and end alike, so that they agree
// whatever sipgo's own key looks like.
func (o *callOrder) txKey(req *sip.Request) (uint64, bool) { return txKeyHash(o.seed, req) }

// txKeyHash is maphash.String(seed, key) of the key of req's server
// transaction (sip.ServerTxKeyMake), without making the key, which costs
// two allocations: for an RFC 3261 branch it hashes the parts of the key
// as sipgo joins them.
func txKeyHash(seed maphash.Seed, req *sip.Request) (uint64, bool) {
	via, cseq := req.Via(), req.CSeq()
	if via == nil || cseq == nil {
		return 0, false
	}
	branch, _ := via.Params.Get("branch")
	if rest, ok := strings.CutPrefix(branch, sip.RFC3261BranchMagicCookie); !ok || rest == "" {
		key, err := sip.ServerTxKeyMake(req)
		if err != nil {
			return 0, false
		}
		return maphash.String(seed, key), true
	}
	method := cseq.MethodName
	if method == sip.ACK {
		method = sip.INVITE
	}
	port := via.Port
	if port <= 0 {
		port = sip.DefaultPort(via.Transport)
	}
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(branch)
	h.WriteString(sip.TxSeperator)
	h.WriteString(via.Host)
	h.WriteString(sip.TxSeperator)
	var num [20]byte
	h.Write(strconv.AppendInt(num[:0], int64(port), 10))
	h.WriteString(sip.TxSeperator)
	h.WriteString(string(method))
	return h.Sum64(), true
}
