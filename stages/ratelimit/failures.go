package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// FailuresKey is the key of the Failures in pipeline.Services.Shared.
const FailuresKey = "security.failures"

// Sizes of the Failures service.
const (
	// FailuresDepth is how many recent failures a source's record keeps:
	// Count never returns more, and auth_failures is at most this.
	FailuresDepth = 32
	// FailuresMaxSources is how many sources it keeps records of; past it
	// the source that failed least recently is forgotten.
	FailuresMaxSources = 65536
)

// Failures records security failures (a wrong password, an unknown user)
// per source address, in bounded memory, for the ratelimit stage to ban
// the sources that fail too often. Stages that see failures (auth) record
// them with Fail; it is shared through pipeline.Services.Shared under
// FailuresKey, so that the records outlive reloads: get it with
// SharedFailures. It is safe for concurrent use.
type Failures struct {
	log   *table[failureLog]
	total atomic.Int64
}

// failureLog is a source's recent failures: a ring of their times, in Unix
// nanoseconds.
type failureLog struct {
	times []int64
	next  int
}

// NewFailures returns an empty Failures that keeps records of at most
// maxSources sources.
func NewFailures(maxSources int) *Failures {
	return &Failures{log: newTable[failureLog](maxSources)}
}

// SharedFailures returns the Failures that the pipeline being built shares
// with the others (see pipeline.Share), creating it when none holds it.
func SharedFailures(b *pipeline.BuildContext) (*Failures, error) {
	return pipeline.Share(b, FailuresKey, func() (*Failures, error) { return NewFailures(FailuresMaxSources), nil })
}

// Fail records a failure from ip at now.
func (f *Failures) Fail(ip netip.Addr, now time.Time) {
	if !ip.IsValid() {
		return
	}
	at := now.UnixNano()
	f.log.update(ip.Unmap(), at, func(l *failureLog) {
		if len(l.times) < FailuresDepth {
			l.times = append(l.times, at)
			return
		}
		l.times[l.next] = at
		l.next = (l.next + 1) % FailuresDepth
	})
	f.total.Add(1)
}

// Count returns how many failures ip had in the window that ends at now
// (at most FailuresDepth).
func (f *Failures) Count(ip netip.Addr, now time.Time, window time.Duration) int {
	if f.total.Load() == 0 {
		return 0
	}
	end := now.UnixNano()
	start := end - int64(window)
	n := 0
	f.log.peek(ip.Unmap(), func(l *failureLog) {
		for _, at := range l.times {
			if at > start && at <= end {
				n++
			}
		}
	})
	return n
}

// Total returns how many failures were recorded since f was created.
func (f *Failures) Total() int64 { return f.total.Load() }

// Sources returns how many sources it keeps records of.
func (f *Failures) Sources() int { return f.log.Len() }
