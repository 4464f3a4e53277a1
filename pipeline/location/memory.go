package location

import (
	"container/heap"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// TombstoneTTL is how long Memory remembers an AOR after its last binding
// was removed or expired: Lookup reports such an AOR as known (a 480 rather
// than a 404 for the location stage) until then, and Sweep forgets it after.
const TombstoneTTL = 24 * time.Hour

// shardCount is the number of independently locked parts of a Memory.
const shardCount = 32

// Memory is a Store that keeps bindings in memory. It is safe for
// concurrent use: AORs are spread over shards, each with its own lock, and
// Update holds the lock of its AOR's shard while fn runs, so fn must be
// quick and must not call the Store.
type Memory struct {
	seed   maphash.Seed
	shards [shardCount]shard
	// held is the number of records that hold bindings (live, or lapsed
	// since the last Sweep): what AORs returns.
	held atomic.Int64
	// bound is the number of bindings the records hold (live, or lapsed
	// since the last Sweep).
	bound atomic.Int64
	// clock is what Count takes as "now"; tests replace it.
	clock func() time.Time
}

// shard is one locked part of a Memory.
type shard struct {
	mu   sync.RWMutex
	aors map[string]*memRecord
	// due files each AOR under the second at which Sweep must look at it
	// next (its record's due), so that a Sweep reads the AORs whose time
	// came and no others: with a million registrations, reading them all
	// every second took the core for a large part of each second. An AOR
	// may be filed under seconds that are no longer its due (it was
	// registered again): Sweep skips those.
	due map[int64][]string
	// seconds holds due's keys, the earliest first.
	seconds secondHeap
}

var (
	_ Store  = (*Memory)(nil)
	_ Holder = (*Memory)(nil)
)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed(), clock: time.Now}
	for i := range m.shards {
		m.shards[i].aors = map[string]*memRecord{}
		m.shards[i].due = map[int64][]string{}
	}
	return m
}

func (m *Memory) shard(aor string) *shard {
	return &m.shards[maphash.String(m.seed, aor)%shardCount]
}

// Lookup returns copies of the live bindings of aor at now, and whether the
// AOR is known: it has live bindings, or lost its last one less than
// TombstoneTTL before now.
func (m *Memory) Lookup(aor string, now time.Time) ([]Binding, bool, error) {
	s := m.shard(aor)
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.aors[aor]
	if !ok {
		return nil, false, nil
	}
	live := r.live(aor, now)
	if len(live) > 0 {
		return live, true, nil
	}
	return nil, known(r.goneAt(), now), nil
}

// Update passes copies of the live bindings of aor to fn and stores what fn
// returns, minus the bindings that are already expired at now. The whole
// call holds the lock of the AOR's shard, so it is atomic with respect to
// every other call on the same AOR. It returns copies of what it stored.
// When fn leaves no binding of an AOR that had some, the AOR is remembered
// as known for TombstoneTTL.
func (m *Memory) Update(aor string, now time.Time, fn func(current []Binding) ([]Binding, error)) ([]Binding, error) {
	s := m.shard(aor)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.aors[aor]
	var current []Binding
	if r != nil {
		current = r.live(aor, now)
	}
	next, err := fn(current)
	if err != nil {
		return nil, err
	}
	stored := storable(aor, now, next)
	if r == nil {
		if len(stored) == 0 {
			// Nothing was, nothing is: no tombstone for an AOR never seen.
			return nil, nil
		}
		r = &memRecord{}
		s.aors[aor] = r
	}
	before := len(r.entries)
	rec := r.view(aor)
	m.held.Add(int64(rec.replace(stored, current, now)))
	r.set(rec)
	m.bound.Add(int64(len(r.entries) - before))
	s.file(aor, r)
	if len(stored) == 0 {
		return nil, nil
	}
	return stored, nil // live copies already, and packed, not kept
}

// Sweep removes the bindings that expired by now and returns how many, and
// forgets the AORs that lost their last binding TombstoneTTL or more ago.
// It reads only the AORs filed under the seconds up to now: its cost is
// that of what is due, not of what is held.
func (m *Memory) Sweep(now time.Time) int {
	removed := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for len(s.seconds) > 0 && s.seconds[0] <= now.Unix() {
			second := heap.Pop(&s.seconds).(int64)
			for _, aor := range s.due[second] {
				r := s.aors[aor]
				if r == nil || r.due != second {
					continue // forgotten, or filed under another second since
				}
				had := len(r.entries) > 0
				rec := r.view(aor)
				n, forget := rec.sweep(now)
				if n > 0 {
					r.set(rec)
				}
				removed += n
				m.bound.Add(-int64(n))
				if had && len(r.entries) == 0 {
					m.held.Add(-1)
				}
				if forget {
					delete(s.aors, aor)
					continue
				}
				r.due = 0 // not filed any more: file it again
				s.file(aor, r)
			}
			delete(s.due, second)
		}
		s.mu.Unlock()
	}
	return removed
}

// file files the AOR's record under the second it is due next, unless it
// is filed there already. The caller holds s.mu.
func (s *shard) file(aor string, r *memRecord) {
	second := r.nextDue()
	if second == r.due && r.due != 0 {
		return
	}
	r.due = second
	if _, ok := s.due[second]; !ok {
		heap.Push(&s.seconds, second)
	}
	s.due[second] = append(s.due[second], aor)
}

// ceilSecond is t in Unix seconds, rounded up: a Sweep at that second or
// later is at or after t.
func ceilSecond(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// secondHeap is a min-heap of Unix seconds (container/heap).
type secondHeap []int64

func (h secondHeap) Len() int           { return len(h) }
func (h secondHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h secondHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *secondHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *secondHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Count returns the number of AORs with live bindings and the number of
// live bindings, at the present time.
func (m *Memory) Count() (aors, bindings int) {
	now := m.clock()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		for _, r := range s.aors {
			if n := r.countLive(now); n > 0 {
				aors++
				bindings += n
			}
		}
		s.mu.RUnlock()
	}
	return aors, bindings
}

// Held returns the number of AORs that hold bindings and of the bindings
// they hold, from counters that Update and Sweep keep: live ones, and
// those lapsed since the last Sweep.
func (m *Memory) Held() (aors, bindings int) {
	return int(m.held.Load()), int(m.bound.Load())
}

// AORs returns the number of AORs that hold bindings, from a counter that
// Update and Sweep keep: an AOR whose last binding lapsed is counted until
// the next Sweep (the engine sweeps a Memory every second). It never fails.
func (m *Memory) AORs(time.Time) (int, error) { return int(m.held.Load()), nil }

// Each calls fn for every AOR with live bindings, shard by shard; fn runs
// without any lock held.
func (m *Memory) Each(now time.Time, fn func(aor string, bindings []Binding) bool) error {
	for i := range m.shards {
		s := &m.shards[i]
		type item struct {
			aor string
			bs  []Binding
		}
		var items []item
		s.mu.RLock()
		for aor, r := range s.aors {
			if bs := r.live(aor, now); len(bs) > 0 {
				items = append(items, item{aor, bs})
			}
		}
		s.mu.RUnlock()
		for _, it := range items {
			if !fn(it.aor, it.bs) {
				return nil
			}
		}
	}
	return nil
}

// Close does nothing: a Memory holds no resources.
func (m *Memory) Close() error { return nil }
