package engine

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// floodRelease gives memory back to the system once a flood of
// transactions is over. An idle Go process collects its garbage only every
// two minutes, so the messages of the transactions a flood held stayed in
// the heap, and in the resident size, that long after the last one ended.
type floodRelease struct {
	// least is the fewest transactions held that make a flood; delay is
	// how long the count must stay below a quarter of its peak before the
	// memory is given back (long enough for the workers the flood started
	// to end).
	least int64
	delay time.Duration
	// every is the least time between two releases.
	every time.Duration
	// release gives the memory back.
	release func()

	peak     int64
	quiet    time.Time // when the count fell below a quarter of peak
	released time.Time // when the memory was last given back
	// rest is true when the memory was given back while some of the
	// flood's transactions were still held: it is given back once more
	// when they have ended.
	rest bool
}

// releaseEvery is the least time between two releases: a collection of
// the whole heap and the return of its free pages cost CPU, and a dialer
// that bursts and idles in turn would otherwise pay for it every cycle.
const releaseEvery = 5 * time.Minute

func newFloodRelease() *floodRelease {
	return &floodRelease{least: 2000, delay: workerIdle + 2*time.Second, every: releaseEvery, release: releaseMemory}
}

// tick is called every second with the transactions held. It gives the
// memory back at most every releaseEvery.
func (r *floodRelease) tick(now time.Time, held int64) {
	switch {
	case held > r.peak:
		r.peak, r.quiet = held, time.Time{}
	case r.rest && held == 0 && now.Sub(r.released) >= r.delay:
		r.release()
		r.peak, r.quiet, r.released, r.rest = 0, time.Time{}, now, false
	case r.peak < r.least || held > r.peak/4:
		r.quiet = time.Time{}
	case r.quiet.IsZero():
		r.quiet = now
	case now.Sub(r.quiet) >= r.delay && now.Sub(r.released) >= r.every:
		r.release()
		r.peak, r.quiet, r.released, r.rest = held, time.Time{}, now, held > 0
	}
}

// releaseMemory collects the garbage and returns the free memory to the
// system, unless server.memory_limit turned the collector off: that
// memory is set aside for the proxy.
func releaseMemory() {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 && s[0].Value.Uint64() == math.MaxUint64 {
		return
	}
	// On a goroutine of its own: the caller is the sweeper's tick, and a
	// collection of the whole heap takes a while.
	go debug.FreeOSMemory()
}
