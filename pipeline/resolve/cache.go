package resolve

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

// entry is one answer kept: records, or the fact that there are none.
type entry struct {
	rrs      []dns.RR
	negative bool
	expires  time.Time
}

type cacheKey struct {
	name  string
	qtype uint16
}

// cache keeps answers until their TTL runs out, at most size of them:
// when full, an expired answer is dropped, or else one at random (Go's
// map order), which costs no bookkeeping on a hit.
type cache struct {
	mu   sync.Mutex
	m    map[cacheKey]entry
	size int
	now  func() time.Time
}

func newCache(size int, now func() time.Time) *cache {
	return &cache{m: make(map[cacheKey]entry), size: size, now: now}
}

func (c *cache) get(name string, qtype uint16) (entry, bool) {
	k := cacheKey{name, qtype}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return entry{}, false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, k)
		return entry{}, false
	}
	return e, true
}

// put keeps e for ttl; a ttl of 0 keeps nothing.
func (c *cache) put(name string, qtype uint16, e entry, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := c.now()
	e.expires = now.Add(ttl)
	k := cacheKey{name, qtype}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		c.evict(now)
	}
	c.m[k] = e
}

// evict drops one entry: the first expired one of a few looked at, or
// the last of them.
func (c *cache) evict(now time.Time) {
	n := 0
	var last cacheKey
	for k, e := range c.m {
		last = k
		n++
		if !now.Before(e.expires) || n == 8 {
			break
		}
	}
	delete(c.m, last)
}

// len is the number of answers kept, expired or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
