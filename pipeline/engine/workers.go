package engine

import "time"

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
type workers struct {
	idle    chan func()
	idleFor time.Duration
}

func newWorkers() *workers {
	return &workers{idle: make(chan func()), idleFor: workerIdle}
}

// run calls f on an idle worker, or on a new one when none is idle.
func (w *workers) run(f func()) {
	select {
	case w.idle <- f:
	default:
		go w.work(f)
	}
}

// work calls f, then whatever run hands it, until it has waited idleFor
// for work.
func (w *workers) work(f func()) {
	f()
	timer := time.NewTimer(w.idleFor)
	defer timer.Stop()
	for {
		select {
		case f := <-w.idle:
			f()
			timer.Reset(w.idleFor)
		case <-timer.C:
			return
		}
	}
}
