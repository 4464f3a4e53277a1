package engine

import (
	"slices"
	"sync"
	"time"
)

// workerIdle is how long a worker waits for work before it ends.
const workerIdle = 10 * time.Second

// workers runs functions on goroutines that outlive them. A request's
// path through the stages, sipgo's transaction layer and the socket needs
// 8 to 16 KB of stack; a new goroutine starts with 2 KB (Go sizes new
// stacks from what its collector last saw, and with server.memory_limit it
// rarely looks) and grows it by copying, frame by frame, two or three
// times, for every message: a tenth of the proxy's CPU at 1600 calls/s. A
// worker keeps the stack it grew. When every worker is busy, run starts
// another, so a function that blocks (a branch waiting for its final
// response, a store on the network) never holds up the next: there is no
// queue and no limit, as with a goroutine per function. A worker left
// without work for workerIdle ends.
//
// The worker idle the shortest takes the next function (a stack, not a
// queue): after a burst that blocked thousands of functions, the load that
// follows keeps the few workers it needs busy and the others end. Taken in
// turn, every worker of the burst got work within its idle time and none
// ended, and each function ran on a goroutine and a stack out of the
// cache, with thousands of idle timers to move (docs/benchmarks.md).
type workers struct {
	idleFor time.Duration

	mu   sync.Mutex
	idle []*worker // the most recently idle last
}

// worker is a goroutine of workers; run hands it a function on next.
type worker struct {
	next chan func()
}

func newWorkers() *workers {
	return &workers{idleFor: workerIdle}
}

// run calls f on the worker idle the shortest, or on a new one when none
// is idle.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wk := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		wk.next <- f // buffered: the worker took itself off the stack to wait
		return
	}
	w.mu.Unlock()
	go w.work(f)
}

// work calls f, then whatever run hands it, until it has waited idleFor
// for work.
func (w *workers) work(f func()) {
	wk := &worker{next: make(chan func(), 1)}
	timer := time.NewTimer(w.idleFor)
	defer timer.Stop()
	for {
		f()
		w.mu.Lock()
		w.idle = append(w.idle, wk)
		w.mu.Unlock()
		timer.Reset(w.idleFor)
		select {
		case f = <-wk.next:
		case <-timer.C:
			if !w.retire(wk) {
				f = <-wk.next // run took it off the stack as the timer fired
				continue
			}
			return
		}
	}
}

// retire takes wk off the idle stack, unless run took it first (and is
// handing it a function).
func (w *workers) retire(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.idle, wk)
	if i < 0 {
		return false
	}
	w.idle = slices.Delete(w.idle, i, i+1)
	return true
}

// idleCount is the number of workers waiting for work.
func (w *workers) idleCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle)
}
