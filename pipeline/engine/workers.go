package engine

import (
	"sync"
	"time"
)

// workerIdle is how long a worker waits for work before it ends.
const workerIdle = 10 * time.Second

// workers runs functions on goroutines that outlive them. A request's path
// through the stages, sipgo's transaction layer and the socket needs 8 to
// 16 KB of stack; a new goroutine starts with what Go's collector last
// found in use on average (2 KB when most goroutines idle in shallow
// frames) and grows it by copying, frame by frame, two or three times, for
// every message: a tenth of the proxy's CPU at 1600 calls/s. A worker keeps
// the stack it grew (see idleReserve). When every worker is busy, run
// starts another, so a function that blocks (a branch waiting for its final
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

	mu  sync.Mutex
	top *worker // the idle worker idle the shortest; nil when none is
}

// worker is a goroutine of workers; run hands it a function on next. An
// idle worker is in the stack of idle workers, between above (idle
// since later) and below, so that one retiring leaves it at no cost
// whatever its place (thousands of them end together after a burst).
type worker struct {
	next         chan func()
	above, below *worker
}

func newWorkers() *workers {
	return &workers{idleFor: workerIdle}
}

// run calls f, which must not be nil, on the worker idle the shortest, or
// on a new one when none is idle.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if wk := w.top; wk != nil {
		w.remove(wk)
		w.mu.Unlock()
		wk.next <- f // buffered: run took the worker off the stack, it waits
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
		w.push(wk)
		w.mu.Unlock()
		timer.Reset(w.idleFor)
		if f = w.wait(wk, timer); f == nil {
			return
		}
	}
}

// idleReserve is the stack an idle worker keeps in use while it waits.
// Go's collector halves the stack of a goroutine that uses less than a
// quarter of it, and starts new goroutines with the average in use among
// those it scanned, rounded up to a power of two: with the reserve a
// worker's 16 KB stack stays whole, and while idle workers are most of the
// goroutines, sipgo's goroutine for each message starts with 8 KB and does
// not grow (docs/benchmarks.md, the tenth round). The reserve, the frames
// of an idle worker and the runtime's stack guard must stay under 8 KB, or
// every new goroutine starts with 16. With server.memory_limit the
// collector seldom runs and new goroutines keep starting with 2 KB.
const idleReserve = 6 << 10

// wait returns the next function run hands wk, or nil once wk has waited
// idleFor and retired; it holds idleReserve of stack while it waits.
//
//go:noinline
func (w *workers) wait(wk *worker, timer *time.Timer) func() {
	var reserve [idleReserve]byte
	holdStack(&reserve)
	select {
	case f := <-wk.next:
		return f
	case <-timer.C:
		if !w.retire(wk) {
			return <-wk.next // run took it off the stack as the timer fired
		}
		return nil
	}
}

// holdStack uses its argument, so that the compiler keeps the array in
// its caller's frame rather than drop it as unused.
//
//go:noinline
func holdStack(*[idleReserve]byte) {}

// retire takes wk off the idle stack, unless run took it first (and is
// handing it a function).
func (w *workers) retire(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wk.above == nil && w.top != wk {
		return false // not on the stack
	}
	w.remove(wk)
	return true
}

// push puts wk on top of the idle stack; w.mu is held.
func (w *workers) push(wk *worker) {
	wk.above, wk.below = nil, w.top
	if w.top != nil {
		w.top.above = wk
	}
	w.top = wk
}

// remove takes wk, idle, off the stack wherever it is; w.mu is held.
func (w *workers) remove(wk *worker) {
	if wk.above != nil {
		wk.above.below = wk.below
	} else {
		w.top = wk.below
	}
	if wk.below != nil {
		wk.below.above = wk.above
	}
	wk.above, wk.below = nil, nil
}

// idleCount is the number of workers waiting for work.
func (w *workers) idleCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for wk := w.top; wk != nil; wk = wk.below {
		n++
	}
	return n
}
