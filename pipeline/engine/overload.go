package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// While the proxy has more work than CPU, messages queue: in a UDP socket's
// receive buffer until its reader takes them, then among the runnable
// goroutines until a worker starts on them. A burst drains; a queue that
// stands does not, since the callers retransmit what waited longer than T1
// and every retransmission adds to it. The proxy then sheds new calls:
// new dialog-creating requests get 503 with Retry-After before any stage,
// at the cost of one parse and one write, while requests in dialogs,
// registrations and responses go on, so that the calls already up can end
// and the queue drains. As in CoDel (RFC 8289), the least wait over an
// interval is what tells a standing queue from a burst. Once every message
// of each interval for T1 waited longer than server.overload_delay, new
// calls are shed until an interval in which one did not: a collection
// cycle that stalls the proxy for a few hundred milliseconds leaves a
// queue that drains by itself, and shedding for it would refuse calls the
// proxy carries. Within an overload (until overloadCalm after its last
// shedding) one interval above the target is enough to shed again: a
// proxy at its limit would otherwise let its queue grow past T1 each time.

const (
	// overloadInterval is how long the waits are watched for their least.
	overloadInterval = 100 * time.Millisecond
	// overloadAbove is how many intervals in a row must stand above the
	// target to begin shedding: T1, after which callers retransmit.
	overloadAbove = 5
	// overloadSamples is the fewest waits an interval must have seen to
	// shed: a few messages that waited are a stall of the machine (a
	// test run beside others, a VM paused), not more work than CPU.
	overloadSamples = 8
	// overloadCalm is how long an overload must have stopped shedding for
	// its end to be logged: a proxy at its limit sheds on and off, an
	// interval at a time, and that is one overload.
	overloadCalm = time.Second
)

// overload watches how long messages wait before the proxy works on them.
type overload struct {
	target func() time.Duration // server.overload_delay; 0: never shed
	log    *slog.Logger

	mu     sync.Mutex
	start  time.Time     // of the interval being watched
	socket time.Duration // the least wait in a socket in it; -1: none seen
	sched  time.Duration // the least wait for a worker in it; -1: none seen
	seen   int           // waits reported in it
	above  int           // intervals in a row whose standing delay passed the target
	// An overload lasts from its first interval that sheds (since) until
	// overloadCalm after its last (calm).
	overloaded  bool
	since, calm time.Time

	shedding atomic.Bool
	refused  atomic.Int64 // requests shed in the overload
	total    atomic.Int64 // requests shed since the start
	standing atomic.Int64 // the last interval's standing delay, in nanoseconds
}

func newOverload(target func() time.Duration, log *slog.Logger) *overload {
	return &overload{target: target, log: log, socket: -1, sched: -1}
}

// queued reports a datagram that waited in its socket's receive buffer,
// from the kernel's receive time to its read.
func (o *overload) queued(wait time.Duration, now time.Time) {
	o.observe(&o.socket, wait, now)
}

// scheduled reports a request that waited from its read to the start of
// its work.
func (o *overload) scheduled(wait time.Duration, now time.Time) {
	o.observe(&o.sched, wait, now)
}

func (o *overload) observe(least *time.Duration, wait time.Duration, now time.Time) {
	wait = max(wait, 0)
	o.mu.Lock()
	defer o.mu.Unlock()
	if elapsed := now.Sub(o.start); elapsed >= overloadInterval {
		o.next(now, elapsed)
	}
	if *least < 0 || wait < *least {
		*least = wait
	}
	o.seen++
}

// next ends the interval being watched: the standing delay is the least
// wait in a socket and the least wait for a worker added up, the two
// queues a message goes through. An interval with fewer than
// overloadSamples waits, or that lasted two or more (the proxy idle, or
// its readers stopped), does not count as above the target.
func (o *overload) next(now time.Time, elapsed time.Duration) {
	socket, sched := max(o.socket, 0), max(o.sched, 0)
	standing := socket + sched
	target := o.target()
	if target > 0 && standing > target && o.seen >= overloadSamples && elapsed < 2*overloadInterval {
		o.above++
	} else {
		o.above = 0
	}
	shed := o.above >= overloadAbove || o.above > 0 && o.overloaded
	o.start, o.socket, o.sched, o.seen = now, -1, -1, 0
	o.standing.Store(int64(standing))
	was := o.shedding.Swap(shed)
	switch {
	case shed && !o.overloaded:
		o.overloaded, o.since = true, now
		o.refused.Store(0)
		o.log.Warn("overloaded: new calls refused with 503 while messages wait",
			"standing_delay", standing, "in_socket", socket, "for_worker", sched, "overload_delay", target)
	case !shed && was:
		o.calm = now
	case !shed && o.overloaded && now.Sub(o.calm) >= overloadCalm:
		o.overloaded = false
		o.log.Warn("overload over", "lasted", o.calm.Sub(o.since), "refused", o.refused.Load())
	}
}

// refusing reports whether new calls are shed now, and counts one.
func (o *overload) refusing() bool {
	if !o.shedding.Load() {
		return false
	}
	o.refused.Add(1)
	o.total.Add(1)
	return true
}

// delay is the standing delay of the last interval watched.
func (o *overload) delay() time.Duration { return time.Duration(o.standing.Load()) }

// shedIfOverloaded answers a new dialog-creating request 503 with
// Retry-After while the proxy is overloaded, and reports whether it did.
// It ends the transaction as refuse does: a refusal must cost the proxy
// far less than the call would have.
func (t *transaction) shedIfOverloaded() bool {
	if !isDialogCreating(t.req) || inDialog(t.req) || !t.e.overload.refusing() {
		return false
	}
	res := sip.NewResponseFromRequest(t.req, 503, "Service Unavailable: overloaded", nil)
	res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	t.refuse(res)
	return true
}
