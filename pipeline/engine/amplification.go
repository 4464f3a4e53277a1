package engine

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// retransmitFinal sends res, a non-2xx final response just sent on the
// server transaction of a UDP INVITE, once more T1 later, unless the ACK
// came or the transaction ended by then.
func (t *transaction) retransmitFinal(res *sip.Response) {
	tx := t.tx
	t.e.timers.after(sip.T1, func() {
		select {
		case <-tx.Done():
			return
		case <-tx.Acks():
			return
		default:
		}
		if err := tx.Connection().WriteMsg(res); err != nil {
			t.log.Debug("final response not retransmitted", "code", res.StatusCode, "error", err)
		}
	})
}

// timers runs functions later, and lets a stop wait until those already
// started have returned; none runs after wait was called.
type timers struct {
	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup
}

// after runs f in d, unless wait was called by then.
func (ts *timers) after(d time.Duration, f func()) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stopped {
		return
	}
	ts.running.Add(1)
	time.AfterFunc(d, func() {
		defer ts.running.Done()
		ts.mu.Lock()
		stopped := ts.stopped
		ts.mu.Unlock()
		if !stopped {
			f()
		}
	})
}

// wait keeps the functions not yet run from running, and returns when
// the time of each has come (T1 at most, for retransmitFinal's).
func (ts *timers) wait() {
	ts.mu.Lock()
	ts.stopped = true
	ts.mu.Unlock()
	ts.running.Wait()
}
