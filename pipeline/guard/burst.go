package guard

import (
	"sync"
	"time"
)

// burstEvery is how often a burst of refused connections is logged.
const burstEvery = 10 * time.Second

// burst thins out the log lines of a repeated event: the first one, then
// at most one each burstEvery, which counts those not logged.
type burst struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// hit counts an event at now and reports whether to log it, and how many
// were not logged since the last line.
func (b *burst) hit(now time.Time) (log bool, skipped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.Sub(b.last) < burstEvery {
		b.skipped++
		return false, 0
	}
	skipped, b.skipped = b.skipped, 0
	b.last = now
	return true, skipped
}
