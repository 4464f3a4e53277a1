package calllog

import (
	"hash/maphash"
	"time"
)

// maxEnded bounds the ended calls remembered (32 s of some 30,000 calls a
// second). Past it the oldest is forgotten first, and a late message of a
// call forgotten early is handled as one of a call never seen (a late BYE
// is logged as one of an unknown call).
const maxEnded = 1 << 20

// endedCalls remembers, for linger after they ended, the calls whose
// record is written, so that their late messages (a retransmitted BYE or
// 2xx, a crossing BYE) change nothing. It keeps a hash of each call's key
// and when it is forgotten, and no pointer: the collector has nothing to
// follow in the tens of thousands of calls a busy proxy ended in the last
// 32 s (docs/benchmarks.md). Two keys of one hash (a chance in 2^64 for
// each pair) would make the second call's messages those of an ended one.
type endedCalls struct {
	seed  maphash.Seed
	epoch time.Time // until is counted from it, on the process clock
	max   int       // maxEnded; less in tests
	m     map[uint64]int64
	// fifo holds the hashes in the order the calls ended, which is the
	// order they are forgotten in: the linger is one for all.
	fifo []endedCall
	head int
}

// endedCall is a call in the queue: its key's hash and when it is
// forgotten.
type endedCall struct {
	hash  uint64
	until int64
}

// newEndedCalls returns an empty endedCalls.
func newEndedCalls() endedCalls {
	return endedCalls{seed: maphash.MakeSeed(), epoch: time.Now(), max: maxEnded}
}

// hash returns the hash of the call of Call-ID callID and caller's tag tag.
func (e *endedCalls) hash(callID, tag string) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteString(callID)
	h.WriteByte(0)
	h.WriteString(tag)
	return h.Sum64()
}

// add remembers the call k until linger after now.
func (e *endedCalls) add(k callKey, now time.Time) {
	if len(e.m) >= e.max {
		e.forget(1)
	}
	until := int64(now.Sub(e.epoch) + linger)
	h := e.hash(k.callID, k.fromTag)
	if e.m == nil {
		e.m = map[uint64]int64{}
	}
	e.m[h] = until
	e.fifo = append(e.fifo, endedCall{hash: h, until: until})
}

// has reports whether a message of Call-ID callID whose From or To tag is
// tag belongs to a call that ended and is remembered. A tag may be empty:
// an RFC 2543 caller's call is keyed by its Call-ID alone.
func (e *endedCalls) has(callID, tag string) bool {
	if len(e.m) == 0 {
		return false
	}
	_, ok := e.m[e.hash(callID, tag)]
	return ok
}

// sweep forgets the calls remembered long enough by now.
func (e *endedCalls) sweep(now time.Time) {
	at := int64(now.Sub(e.epoch))
	n := 0
	for e.head+n < len(e.fifo) && e.fifo[e.head+n].until <= at {
		n++
	}
	e.forget(n)
}

// forget forgets the n calls that ended first. The queue and the map are
// given back once empty, since both keep the room a burst made them grow
// to.
func (e *endedCalls) forget(n int) {
	for ; n > 0 && e.head < len(e.fifo); n-- {
		k := e.fifo[e.head]
		if until, ok := e.m[k.hash]; ok && until == k.until {
			delete(e.m, k.hash)
		}
		e.head++
	}
	switch {
	case e.head == len(e.fifo):
		e.fifo, e.head = e.fifo[:0], 0
		if len(e.m) == 0 {
			e.m, e.fifo = nil, nil
		}
	case e.head > len(e.fifo)/2 && e.head > 1024:
		k := copy(e.fifo, e.fifo[e.head:])
		e.fifo, e.head = e.fifo[:k], 0
	}
}

// len returns the number of ended calls remembered.
func (e *endedCalls) len() int { return len(e.m) }
