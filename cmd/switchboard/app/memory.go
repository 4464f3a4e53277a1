package app

import (
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/switchboard-sip/switchboard/config"
)

// collector applies server.memory_limit to Go's garbage collector, which
// is one per process.
type collector struct {
	mu      sync.Mutex
	applied config.Size
}

// startGC is the collector's setting before any config: Go's defaults, or
// the GOGC and GOMEMLIMIT environment variables.
var startGC = sync.OnceValues(func() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
})

// apply sets the collector for limit: with a limit, no collection until
// the heap nears it (GOGC off, GOMEMLIMIT = limit); without one, the
// setting the process started with. It logs a change.
func (c *collector) apply(limit config.Size, log *slog.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	percent, start := startGC()
	if limit == c.applied {
		return
	}
	if limit > 0 {
		debug.SetMemoryLimit(int64(limit))
		debug.SetGCPercent(-1)
		log.Info("garbage collector", "memory_limit", limit.String(), "detail", "collections only as the heap nears the limit")
	} else {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(start)
		log.Info("garbage collector", "memory_limit", "none", "detail", "Go's default (GOGC, GOMEMLIMIT)")
	}
	c.applied = limit
}
