package location

import (
	"container/heap"
	"hash/maphash"
)

// compactFree is the fewest free slots that make a shard worth compacting.
const compactFree = 256

// compact rebuilds the shard without its free slots once at least half of
// them are free: Go maps and slices keep the room they grew to, so that a
// flood of registrations of ever new AORs, once removed and forgotten,
// would otherwise keep its slots, index and filing for good. The caller
// holds s.mu.
func (s *shard) compact(seed maphash.Seed) {
	if len(s.free) < compactFree || len(s.free) < len(s.slots)/2 {
		return
	}
	live := len(s.slots) - len(s.free)
	slots := make([]memRecord, 0, live)
	index := make(map[uint64]int32, live)
	due := map[int64][]int32{}
	var seconds secondHeap
	for _, r := range s.slots {
		if r.aorLen < 0 {
			continue
		}
		h := maphash.String(seed, r.aor())
		r.next = -1
		if head, ok := index[h]; ok {
			r.next = head
		}
		i := int32(len(slots))
		index[h] = i
		if r.due != 0 {
			if _, ok := due[r.due]; !ok {
				seconds = append(seconds, r.due)
			}
			due[r.due] = append(due[r.due], i)
		}
		slots = append(slots, r)
	}
	heap.Init(&seconds)
	s.slots, s.index, s.due, s.seconds, s.free = slots, index, due, seconds, nil
}
