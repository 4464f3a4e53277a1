package destinations

import (
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Set is a destination set as a pipeline uses it: its destinations, and
// the algorithm that orders them for a request.
type Set struct {
	Name string
	// Algorithm is one of config.SetAlgorithms.
	Algorithm string
	// Attempts bounds the destinations one request goes to.
	Attempts     int
	Destinations []*Destination

	next atomic.Uint64 // round robin's place

	mu      sync.Mutex
	current []int // smooth weighted round robin's running weights
}

// Order returns the destinations a request goes to, one after the other:
// alive ones only, the algorithm's choice first, at most Attempts.
func (s *Set) Order(req *sip.Request) []*Destination {
	alive := make([]int, 0, len(s.Destinations))
	for i, d := range s.Destinations {
		if d.Alive() {
			alive = append(alive, i)
		}
	}
	if len(alive) == 0 {
		return nil
	}
	switch s.Algorithm {
	case "weighted":
		alive = s.weighted(alive)
	case "priority":
		slices.SortStableFunc(alive, func(a, b int) int { return s.Destinations[a].Priority - s.Destinations[b].Priority })
	case "hash_call_id":
		alive = s.rendezvous(alive, callID(req))
	case "hash_caller":
		alive = s.rendezvous(alive, fromUser(req))
	case "hash_callee":
		alive = s.rendezvous(alive, req.Recipient.User)
	case "least_calls":
		alive = s.rotate(alive)
		slices.SortStableFunc(alive, func(a, b int) int {
			return int(s.Destinations[a].InProgress() - s.Destinations[b].InProgress())
		})
	default: // round_robin
		alive = s.rotate(alive)
	}
	n := min(len(alive), s.Attempts)
	out := make([]*Destination, n)
	for i := range n {
		out[i] = s.Destinations[alive[i]]
	}
	return out
}

// rotate starts the list at the round robin's next place.
func (s *Set) rotate(idx []int) []int {
	k := int(s.next.Add(1)-1) % len(idx)
	return append(idx[k:len(idx):len(idx)], idx[:k]...)
}

// weighted picks the first by smooth weighted round robin (as nginx
// does: over any run of requests each destination gets its share, spread
// out), and the others by weight, heaviest first.
func (s *Set) weighted(idx []int) []int {
	s.mu.Lock()
	if len(s.current) != len(s.Destinations) {
		s.current = make([]int, len(s.Destinations))
	}
	total, best := 0, -1
	for _, i := range idx {
		w := s.Destinations[i].Weight
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= total
	s.mu.Unlock()
	rest := make([]int, 0, len(idx))
	for _, i := range idx {
		if i != best {
			rest = append(rest, i)
		}
	}
	slices.SortStableFunc(rest, func(a, b int) int { return s.Destinations[b].Weight - s.Destinations[a].Weight })
	return append([]int{best}, rest...)
}

// rendezvous orders by highest random weight of key and each URI: a key
// sticks to its destination while that one is alive, and only the keys of
// a destination that goes down move.
func (s *Set) rendezvous(idx []int, key string) []int {
	score := make(map[int]uint64, len(idx))
	for _, i := range idx {
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write([]byte(s.Destinations[i].URI.String()))
		score[i] = mix(h.Sum64())
	}
	out := slices.Clone(idx)
	slices.SortStableFunc(out, func(a, b int) int {
		switch {
		case score[a] > score[b]:
			return -1
		case score[a] < score[b]:
			return 1
		}
		return 0
	})
	return out
}

// mix spreads FNV's output over all 64 bits (splitmix64's finaliser), so
// that keys that differ in one character pick evenly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func fromUser(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.User
	}
	return ""
}
