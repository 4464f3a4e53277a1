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
	// fwd holds the users' call forwarding.
	fwd forwardMap
}

// shard is one locked part of a Memory.
type shard struct {
	mu sync.RWMutex
	// slots holds the records; free lists the slots that records left.
	slots []memRecord
	free  []int32
	// index finds the slot of an AOR by its hash: the first record with
	// that hash; the others are chained through their next.
	index map[uint64]int32
	// due files each record's slot under the second at which Sweep must
	// look at it next (its record's due), so that a Sweep reads the
	// records whose time came and no others: with a million
	// registrations, reading them all every second took the core for a
	// large part of each second. A slot may be filed under seconds that
	// are no longer its record's due (the AOR was registered again, or
	// forgotten and the slot reused): Sweep skips those.
	due map[int64][]int32
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
		m.shards[i].index = map[uint64]int32{}
		m.shards[i].due = map[int64][]int32{}
	}
	return m
}

// shard returns the shard of aor and aor's hash.
func (m *Memory) shard(aor string) (*shard, uint64) {
	h := maphash.String(m.seed, aor)
	return &m.shards[h%shardCount], h
}

// find returns the slot of the record of aor, whose hash is h, or -1.
func (s *shard) find(h uint64, aor string) int32 {
	i, ok := s.index[h]
	if !ok {
		return -1
	}
	for ; i >= 0; i = s.slots[i].next {
		if s.slots[i].aor() == aor {
			return i
		}
	}
	return -1
}

// add puts r, the record of an AOR whose hash is h, in a slot and
// returns the slot.
func (s *shard) add(h uint64, r memRecord) int32 {
	r.next = -1
	if head, ok := s.index[h]; ok {
		r.next = head
	}
	var i int32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
		s.slots[i] = r
	} else {
		i = int32(len(s.slots))
		s.slots = append(s.slots, r)
	}
	s.index[h] = i
	return i
}

// remove frees slot i, whose AOR's hash is h.
func (s *shard) remove(h uint64, i int32) {
	if head := s.index[h]; head == i {
		if next := s.slots[i].next; next >= 0 {
			s.index[h] = next
		} else {
			delete(s.index, h)
		}
	} else {
		for j := head; j >= 0; j = s.slots[j].next {
			if s.slots[j].next == i {
				s.slots[j].next = s.slots[i].next
				break
			}
		}
	}
	s.slots[i] = memRecord{aorLen: -1, next: -1}
	s.free = append(s.free, i)
}

// Lookup returns copies of the live bindings of aor at now, and whether the
// AOR is known: it has live bindings, or lost its last one less than
// TombstoneTTL before now.
func (m *Memory) Lookup(aor string, now time.Time) ([]Binding, bool, error) {
	s, h := m.shard(aor)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := s.find(h, aor)
	if i < 0 {
		return nil, false, nil
	}
	r := &s.slots[i]
	live := r.live(now)
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
	s, h := m.shard(aor)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(h, aor)
	var current []Binding
	if i >= 0 {
		current = s.slots[i].live(now)
	}
	next, err := fn(current)
	if err != nil {
		return nil, err
	}
	stored := storable(aor, now, next)
	if i < 0 {
		if len(stored) == 0 {
			// Nothing was, nothing is: no tombstone for an AOR never seen.
			return nil, nil
		}
		i = s.add(h, memRecord{})
	}
	r := &s.slots[i]
	rec := r.view()
	before := len(rec.bindings)
	m.held.Add(int64(rec.replace(stored, current, now)))
	r.set(aor, rec)
	m.bound.Add(int64(len(stored) - before))
	s.file(i, rec.due())
	if len(stored) == 0 {
		return nil, nil
	}
	return stored, nil // live copies already, and packed, not kept
}

// Sweep removes the bindings that expired by now and returns how many, and
// forgets the AORs that lost their last binding TombstoneTTL or more ago.
// It reads only the records filed under the seconds up to now: its cost is
// that of what is due, not of what is held.
func (m *Memory) Sweep(now time.Time) int {
	removed := 0
	for k := range m.shards {
		s := &m.shards[k]
		s.mu.Lock()
		for len(s.seconds) > 0 && s.seconds[0] <= now.Unix() {
			second := heap.Pop(&s.seconds).(int64)
			for _, i := range s.due[second] {
				r := &s.slots[i]
				if r.aorLen < 0 || r.due != second {
					continue // forgotten, or filed under another second since
				}
				had := r.packed() != ""
				rec := r.view()
				n, forget := rec.sweep(now)
				if n > 0 {
					r.set(r.aor(), rec)
				}
				removed += n
				m.bound.Add(-int64(n))
				if had && r.packed() == "" {
					m.held.Add(-1)
				}
				if forget {
					s.remove(maphash.String(m.seed, r.aor()), i)
					continue
				}
				r.due = 0 // not filed any more: file it again
				s.file(i, rec.due())
			}
			delete(s.due, second)
		}
		s.compact(m.seed)
		s.mu.Unlock()
	}
	return removed
}

// file files slot i under second, when its record is due next (record.due),
// unless it is filed there already. The caller holds s.mu.
func (s *shard) file(i int32, second int64) {
	r := &s.slots[i]
	if second == r.due && r.due != 0 {
		return
	}
	r.due = second
	if _, ok := s.due[second]; !ok {
		heap.Push(&s.seconds, second)
	}
	s.due[second] = append(s.due[second], i)
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
		for i := range s.slots {
			if s.slots[i].aorLen < 0 {
				continue // a free slot
			}
			if n := s.slots[i].countLive(now); n > 0 {
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
		for i := range s.slots {
			r := &s.slots[i]
			if r.aorLen < 0 {
				continue // a free slot
			}
			if bs := r.live(now); len(bs) > 0 {
				items = append(items, item{r.aor(), bs})
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
