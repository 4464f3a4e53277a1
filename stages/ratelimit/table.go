package ratelimit

import (
	"cmp"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// maxShards is how many locks a table spreads its sources over.
const maxShards = 64

// table maps source addresses to a V, in a fixed amount of memory: it never
// holds more than its capacity, and when it is full it forgets the source
// seen least recently to make room for a new one. The sources are spread
// over shards by a keyed hash of the whole address, each shard with its own
// lock and its own share of the capacity, so that packets from different
// sources seldom wait for each other, and no network fills one shard.
type table[V any] struct {
	shards atomic.Pointer[[]shard[V]]
	// capacity is the number of sources the shards hold at most.
	capacity atomic.Int64
	// evicted counts the sources forgotten to make room.
	evicted atomic.Int64
	// resizing serializes resize.
	resizing sync.Mutex
	// seed keys the hash, so that nobody outside can pick addresses
	// that share a shard.
	seed maphash.Seed
}

// shard is one lock's share of a table: a map and a list of its nodes from
// the most recently seen (lru.next) to the least (lru.prev).
type shard[V any] struct {
	mu    sync.Mutex
	nodes map[netip.Addr]*node[V]
	lru   node[V]
	cap   int
	// pad keeps two shards' locks off one cache line.
	_ [40]byte
}

type node[V any] struct {
	key        netip.Addr
	val        V
	seen       int64 // when the source was last seen, for resize
	prev, next *node[V]
}

// newTable returns a table of the given capacity (at least 1).
func newTable[V any](capacity int) *table[V] {
	t := &table[V]{seed: maphash.MakeSeed()}
	shards := makeShards[V](capacity)
	t.shards.Store(&shards)
	t.capacity.Store(int64(capacity))
	return t
}

// minPerShard is the fewest sources a shard holds: a shard that holds a
// handful would forget a ban as soon as a few other sources that hash to
// it show up, long before the table is full. Small tables have one lock.
const minPerShard = 256

// makeShards returns empty shards whose capacities add up to capacity.
func makeShards[V any](capacity int) []shard[V] {
	capacity = max(capacity, 1)
	n := min(max(capacity/minPerShard, 1), maxShards)
	shards := make([]shard[V], n)
	for i := range shards {
		s := &shards[i]
		s.cap = capacity / n
		if i < capacity%n {
			s.cap++
		}
		s.nodes = make(map[netip.Addr]*node[V])
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return shards
}

// shard returns the shard of a source. Every bit of the address counts,
// IPv4 and IPv6 alike.
func (t *table[V]) shard(key netip.Addr) *shard[V] {
	shards := *t.shards.Load()
	a := key.As16()
	// The high word of hash times n is an index below n, without a division.
	i, _ := bits.Mul64(maphash.Bytes(t.seed, a[:]), uint64(len(shards)))
	return &shards[i]
}

// update calls fn with the value of a source, under its shard's lock, and
// marks the source as seen at now (Unix nanoseconds). A source the table
// does not hold is added with the zero V, and when the shard is full the
// one it saw least recently is forgotten to make room: update returns its
// value and true then.
func (t *table[V]) update(key netip.Addr, now int64, fn func(v *V)) (forgot V, evicted bool) {
	s := t.shard(key)
	s.mu.Lock()
	n, ok := s.nodes[key]
	switch {
	case ok:
		s.unlink(n)
	case len(s.nodes) >= s.cap:
		n = s.lru.prev
		s.unlink(n)
		delete(s.nodes, n.key)
		t.evicted.Add(1)
		var zero V
		forgot, evicted = n.val, true
		n.key, n.val = key, zero
		s.nodes[key] = n
	default:
		n = &node[V]{key: key}
		s.nodes[key] = n
	}
	n.seen = now
	s.pushFront(n)
	fn(&n.val)
	s.mu.Unlock()
	return forgot, evicted
}

// peek calls fn with the value of a source, under its shard's lock, if the
// table holds it; it does not count as seeing the source.
func (t *table[V]) peek(key netip.Addr, fn func(v *V)) bool {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[key]
	if ok {
		fn(&n.val)
	}
	return ok
}

// Len returns how many sources the table holds.
func (t *table[V]) Len() int {
	shards := *t.shards.Load()
	total := 0
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		total += len(s.nodes)
		s.mu.Unlock()
	}
	return total
}

// resize changes the capacity, keeping the sources seen most recently. It
// is for a reload that changes max_sources, and is cheap when the capacity
// is already right. Updates that race with it may be lost: a few packets
// may go uncounted while a reload resizes.
func (t *table[V]) resize(capacity int) {
	if t.capacity.Load() == int64(capacity) {
		return
	}
	t.resizing.Lock()
	defer t.resizing.Unlock()
	if t.capacity.Load() == int64(capacity) {
		return
	}
	old := *t.shards.Load()
	var all []node[V]
	for i := range old {
		s := &old[i]
		s.mu.Lock()
		for n := s.lru.next; n != &s.lru; n = n.next {
			all = append(all, node[V]{key: n.key, val: n.val, seen: n.seen})
		}
		s.mu.Unlock()
	}
	// From the least recently seen, so that the newest are kept.
	slices.SortStableFunc(all, func(a, b node[V]) int { return cmp.Compare(a.seen, b.seen) })
	fresh := &table[V]{seed: t.seed}
	shards := makeShards[V](capacity)
	fresh.shards.Store(&shards)
	for _, n := range all {
		fresh.update(n.key, n.seen, func(v *V) { *v = n.val })
	}
	t.evicted.Add(fresh.evicted.Load())
	t.shards.Store(&shards)
	t.capacity.Store(int64(capacity))
}

func (s *shard[V]) unlink(n *node[V]) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (s *shard[V]) pushFront(n *node[V]) {
	n.prev, n.next = &s.lru, s.lru.next
	s.lru.next.prev = n
	s.lru.next = n
}
