package app

import (
	"bufio"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/switchboard-sip/switchboard/config"
)

// collector applies server.memory_limit to Go's garbage collector, which
// is one per process.
type collector struct {
	mu      sync.Mutex
	applied config.Size
	// touched is the largest limit prefault has run for.
	touched config.Size
}

// startGC is the collector's setting before any config: Go's defaults, or
// the GOGC and GOMEMLIMIT environment variables.
var startGC = sync.OnceValues(func() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
})

// apply sets the collector for limit: with a limit, no collection until
// the heap nears it (GOGC off, GOMEMLIMIT = limit), three quarters of it
// touched at once (prefault); without one, the setting the process
// started with. It logs a change.
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
		avail, where := availableMemory()
		if limit > c.touched && int64(limit) <= avail {
			prefault(int64(limit) * 3 / 4)
			c.touched = limit
		}
		log.Info("garbage collector", "memory_limit", limit.String(), "detail", "collections only as the memory in use nears the limit")
		for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
			if v := os.Getenv(env); v != "" {
				log.Warn("server.memory_limit replaces an environment setting", "env", env+"="+v, "memory_limit", limit.String())
			}
		}
		if avail > 0 && int64(limit) > avail {
			log.Warn("server.memory_limit is more than the memory available: the garbage collector may never run before the kernel kills the proxy",
				"memory_limit", limit.String(), "available", config.Size(avail).String(), "from", where)
		}
	} else {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(start)
		log.Info("garbage collector", "memory_limit", "none", "detail", "Go's default (GOGC, GOMEMLIMIT)")
	}
	c.applied = limit
}

// availableMemory returns the memory the process may use, in bytes, and
// where that figure comes from: its cgroup's memory.max when it has one,
// else the machine's MemTotal; 0 when neither can be read.
func availableMemory() (int64, string) {
	if data, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			return n, "cgroup memory.max"
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10, "MemTotal"
			}
		}
	}
	return 0, ""
}

// prefault touches n bytes of heap once and lets them go. With GOGC off
// the heap grows to the limit before its first collection; without this,
// it does so under load, a page fault at a time, which in the benchmark
// cost a quarter more CPU and a p99 of 100 to 500 ms at the rate where it
// happened. The pages stay with the runtime (the resident size shows the
// memory set aside from the start). Not past the memory there is.
func prefault(n int64) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
}
