package engine

import (
	"log/slog"
	"net/url"
	"slices"
	"strings"
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
// new dialog-creating requests get 503 before any request stage, far
// cheaper than the calls, while requests in dialogs, registrations and
// responses go on, so that the calls already up can end and the queue
// drains. As in CoDel (RFC 8289), the least wait over an interval is what
// tells a standing queue from a burst. Once, in each interval for T1, the
// least wait exceeded server.overload_delay, new calls are shed until an
// interval in which it did not: a collection cycle that stalls the proxy
// for a few hundred milliseconds leaves a queue that drains by itself, and
// shedding for it would refuse calls the proxy carries. Within an overload
// (until overloadCalm after its last shedding) one interval above the
// target is enough to shed again: a proxy at its limit would otherwise let
// its queue grow past T1 each time.

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

	mu    sync.Mutex
	start time.Time // of the interval being watched
	// sockets holds, by socket (queuedIn), the least wait in its receive
	// buffer in the interval, sched the least wait for a worker; -1: none
	// seen. Each socket has its own queue: a quiet one must not hide a
	// busy one's.
	sockets []time.Duration
	sched   time.Duration
	seen    int // waits reported in the interval
	above   int // intervals in a row whose standing delay passed the target
	// An overload lasts from its first interval that sheds (since) until
	// overloadCalm after its last (calm); totalBefore is total at since.
	overloaded  bool
	since, calm time.Time
	totalBefore int64

	shedding atomic.Bool
	total    atomic.Int64 // requests shed since the start
	standing atomic.Int64 // the last interval's standing delay, in nanoseconds
}

func newOverload(target func() time.Duration, log *slog.Logger) *overload {
	return &overload{target: target, log: log, sched: -1}
}

// queuedIn returns what a socket's reader reports a datagram's wait in the
// socket's receive buffer with, from the kernel's receive time to its read.
func (o *overload) queuedIn() func(wait time.Duration, now time.Time) {
	o.mu.Lock()
	i := len(o.sockets)
	o.sockets = append(o.sockets, -1)
	o.mu.Unlock()
	return func(wait time.Duration, now time.Time) {
		o.observe(now, func() { o.sockets[i] = least(o.sockets[i], wait) })
	}
}

// scheduled reports a request that waited from its read to the start of
// its work.
func (o *overload) scheduled(wait time.Duration, now time.Time) {
	o.observe(now, func() { o.sched = least(o.sched, wait) })
}

// least returns the lesser of a least wait so far (-1: none) and wait.
func least(so time.Duration, wait time.Duration) time.Duration {
	wait = max(wait, 0)
	if so < 0 || wait < so {
		return wait
	}
	return so
}

// observe ends the interval when now is past it, then adds a wait with
// add, under the lock. The log line of the interval's end, if any, is
// written after the lock is let go: a slow log must not hold the readers.
func (o *overload) observe(now time.Time, add func()) {
	o.mu.Lock()
	var say func()
	if elapsed := now.Sub(o.start); elapsed >= overloadInterval {
		say = o.next(now, elapsed)
	}
	add()
	o.seen++
	o.mu.Unlock()
	if say != nil {
		say()
	}
}

// next ends the interval being watched, and returns what to log of it.
// The standing delay is the least wait for a worker added to the largest
// of the sockets' least waits: the two queues a message goes through. An
// interval with fewer than overloadSamples waits, or that lasted two or
// more (the proxy idle, or its readers stopped), does not count as above
// the target.
func (o *overload) next(now time.Time, elapsed time.Duration) (say func()) {
	var socket time.Duration
	for i, w := range o.sockets {
		socket = max(socket, w)
		o.sockets[i] = -1
	}
	sched := max(o.sched, 0)
	standing := socket + sched
	target := o.target()
	if target > 0 && standing > target && o.seen >= overloadSamples && elapsed < 2*overloadInterval {
		o.above++
	} else {
		o.above = 0
	}
	shed := o.above >= overloadAbove || o.above > 0 && o.overloaded
	o.start, o.sched, o.seen = now, -1, 0
	o.standing.Store(int64(standing))
	was := o.shedding.Swap(shed)
	switch {
	case shed && !o.overloaded:
		o.overloaded, o.since, o.totalBefore = true, now, o.total.Load()
		return func() {
			o.log.Warn("overloaded: new calls refused with 503 while messages wait",
				"standing_delay", standing, "in_socket", socket, "for_worker", sched, "overload_delay", target)
		}
	case !shed && was:
		o.calm = now
	case !shed && o.overloaded && now.Sub(o.calm) >= overloadCalm:
		o.overloaded = false
		lasted, refused := o.calm.Sub(o.since), o.total.Load()-o.totalBefore
		return func() { o.log.Warn("overload over", "lasted", lasted, "refused", refused) }
	}
	return nil
}

// settle ends the interval being watched when nothing ended it for two
// intervals (the proxy idle): what the gauges show, and the log's "overload
// over", do not wait for the next message.
func (o *overload) settle(now time.Time) {
	o.mu.Lock()
	var say func()
	if elapsed := now.Sub(o.start); elapsed >= 2*overloadInterval {
		say = o.next(now, elapsed)
	}
	o.mu.Unlock()
	if say != nil {
		say()
	}
}

// refusing reports whether new calls are shed now, and counts one.
func (o *overload) refusing() bool {
	if !o.shedding.Load() {
		return false
	}
	o.total.Add(1)
	return true
}

// delay is the standing delay of the last interval watched.
func (o *overload) delay() time.Duration { return time.Duration(o.standing.Load()) }

// shedIfOverloaded answers a new dialog-creating request 503 while the
// proxy is overloaded, and reports whether it did. It ends the
// transaction as refuse does: a refusal must cost the proxy far less than
// the call would have. The 503 has no Retry-After: a proxy upstream that
// honours one sends nothing more for its time (RFC 3261 21.5.4), not even
// the BYEs and re-INVITEs of the calls up, and the shedding of a proxy at
// its limit comes and goes within a second (RFC 6357 3.1). An emergency
// call (urn:service:sos, RFC 5031, or a number of
// server.emergency_numbers) is never shed.
func (t *transaction) shedIfOverloaded() bool {
	// The emergency check comes before refusing, which counts the
	// refusal, and after the cheap look at whether the proxy sheds.
	o := t.e.overload
	if !opensDialog(t.req) || !o.shedding.Load() || emergency(&t.req.Recipient, t.p.Config.Server.EmergencyNumbers) || !o.refusing() {
		return false
	}
	t.refuse(sip.NewResponseFromRequest(t.req, 503, "Service Unavailable: overloaded", nil))
	return true
}

// emergency reports whether u calls an emergency service: the service URN
// urn:service:sos or one of its sub-services (urn:service:sos.police), or
// one of numbers dialled, as the user part of a sip or sips URI or as a
// tel URI, without its parameters and visual separators (RFC 3966).
func emergency(u *sip.Uri, numbers []string) bool {
	var dialled string
	switch strings.ToLower(u.Scheme) {
	case "urn":
		s := strings.ToLower(u.String())
		return s == "urn:service:sos" || strings.HasPrefix(s, "urn:service:sos.")
	case "sip", "sips":
		// A telephone-subscriber user part may carry parameters
		// (112;phone-context=..., 3GPP TS 24.229) and escapes.
		dialled, _, _ = strings.Cut(u.User, ";")
		if s, err := url.PathUnescape(dialled); err == nil {
			dialled = s
		}
	case "tel":
		dialled, _, _ = strings.Cut(u.Raw(), ";")
	default:
		return false
	}
	if strings.ContainsAny(dialled, "-.()") {
		dialled = strings.NewReplacer("-", "", ".", "", "(", "", ")", "").Replace(dialled)
	}
	return dialled != "" && slices.Contains(numbers, dialled)
}
