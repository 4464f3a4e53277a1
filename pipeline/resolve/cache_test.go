package resolve

import (
	"fmt"
	"testing"
	"time"
)

// clock is a settable clock for the cache.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		ttl, after time.Duration
		hit        bool
	}{
		{60 * time.Second, 59 * time.Second, true},
		{60 * time.Second, 60 * time.Second, false},
		{time.Second, 2 * time.Second, false},
		{0, 0, false}, // a TTL of 0 is not kept
	}
	for i, tc := range tests {
		clk := &clock{t: time.Unix(1000, 0)}
		c := newCache(10, clk.now)
		c.put("a.test.", 1, entry{}, tc.ttl)
		clk.advance(tc.after)
		if _, hit := c.get("a.test.", 1); hit != tc.hit {
			t.Errorf("test %d: hit %v after %s with TTL %s, want %v", i, hit, tc.after, tc.ttl, tc.hit)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newCache(5, clk.now)
	for i := range 50 {
		c.put(fmt.Sprintf("n%d.test.", i), 1, entry{}, time.Minute)
		if n := c.len(); n > 5 {
			t.Fatalf("after %d answers the cache holds %d, want at most 5", i+1, n)
		}
	}
	if _, hit := c.get("n49.test.", 1); !hit {
		t.Error("the answer put last is not kept")
	}
	// An expired answer goes first when the cache is full.
	c = newCache(2, clk.now)
	c.put("old.test.", 1, entry{}, time.Second)
	c.put("live.test.", 1, entry{}, time.Hour)
	clk.advance(2 * time.Second)
	c.put("new.test.", 1, entry{}, time.Hour)
	if _, hit := c.get("live.test.", 1); !hit {
		t.Error("a live answer was evicted while an expired one was kept")
	}
}
