package engine

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// maxRefusals bounds the refusals kept: in a flood past it, a
// retransmission of a refused request is handled as a new request again.
const maxRefusals = 1 << 16

// refusals are the answers refuse sent, by the key of the server
// transaction it ended, for as long as that transaction would have waited
// for its ACK (Timer H). A retransmission of the request that crossed the
// answer, or waited behind it in the socket's buffer, gets the same answer
// again, as a transaction in Completed would give it: handled as a new
// request, it could pass a limit that freed up meanwhile, and the caller
// would get a second, different final response (486, then a 200 for a call
// it gave up).
type refusals struct {
	mu sync.Mutex
	m  map[string]refusal
}

type refusal struct {
	res   *sip.Response
	until time.Time
}

// add keeps res, the answer of the server transaction key.
func (r *refusals) add(key string, res *sip.Response, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]refusal{}
	}
	if len(r.m) >= maxRefusals {
		r.sweepLocked(now)
		if len(r.m) >= maxRefusals {
			return
		}
	}
	r.m[key] = refusal{res: res, until: now.Add(sip.Timer_H)}
}

// find returns the answer kept for the server transaction key, or nil.
func (r *refusals) find(key string, now time.Time) *sip.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.m[key]
	if !ok {
		return nil
	}
	if now.After(f.until) {
		delete(r.m, key)
		return nil
	}
	return f.res
}

// sweepLocked forgets the refusals whose time is over; an empty map is
// dropped, since a Go map keeps the room a flood made it grow to.
func (r *refusals) sweepLocked(now time.Time) {
	for k, f := range r.m {
		if now.After(f.until) {
			delete(r.m, k)
		}
	}
	if len(r.m) == 0 {
		r.m = nil
	}
}

// sweep forgets the refusals whose time is over.
func (r *refusals) sweep(now time.Time) {
	r.mu.Lock()
	r.sweepLocked(now)
	r.mu.Unlock()
}
