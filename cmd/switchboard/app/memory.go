package app

import (
	"bufio"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"

	"github.com/switchboard-sip/switchboard/config"
)

// collector applies server.memory_limit and server.gc_headroom to Go's
// garbage collector, which is one per process.
type collector struct {
	mu      sync.Mutex
	applied config.Size
	// headroom is the least the heap may grow past what is live before a
	// collection, when no memory_limit is set; 0 while a limit is.
	headroom config.Size
	// percent is the GOGC the headroom set last; watching says the hook
	// that runs after each collection is set.
	percent  int
	watching bool
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
// started with, and after each collection a GOGC that lets the heap grow
// by headroom at least (tune), unless the GOGC environment variable is
// set. It logs a change.
func (c *collector) apply(limit, headroom config.Size, log *slog.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	percent, start := startGC()
	if limit > 0 || headroom <= config.MinGCHeadroom {
		headroom = 0 // the smallest headroom is Go's default
	} else if os.Getenv("GOGC") != "" {
		headroom = 0 // the operator's own setting stands
	}
	if limit == c.applied && headroom == c.headroom {
		return
	}
	c.headroom = headroom
	if limit > 0 {
		c.percent = 0
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
		debug.SetMemoryLimit(start)
		c.percent = percent
		debug.SetGCPercent(percent)
		if headroom > 0 {
			c.tuneLocked()
			if !c.watching {
				c.watching = true
				c.afterCollection()
			}
			log.Info("garbage collector", "memory_limit", "none", "gc_headroom", headroom.String(), "detail", "a collection each time the heap doubles, or grows by gc_headroom if that is more")
		} else {
			log.Info("garbage collector", "memory_limit", "none", "detail", "Go's default (GOGC, GOMEMLIMIT)")
		}
	}
	c.applied = limit
}

// stop gives the collector back the setting the process started with,
// and stops tuning it: the proxy has stopped (a test's, in a process that
// goes on).
func (c *collector) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	percent, start := startGC()
	c.headroom, c.applied, c.percent = 0, 0, 0
	debug.SetGCPercent(percent)
	debug.SetMemoryLimit(start)
}

// cycleMark is garbage whose finalizer runs after the collection that
// found it: it has a pointer, so that Go's tiny allocator never combines
// it with another object and delays it.
type cycleMark struct{ _ *cycleMark }

// afterCollection has tune run after the next collection, and again after
// each one that follows.
func (c *collector) afterCollection() {
	runtime.SetFinalizer(&cycleMark{}, func(*cycleMark) {
		c.tune()
		c.afterCollection()
	})
}

func (c *collector) tune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tuneLocked()
}

// tuneLocked sets GOGC for the heap the last collection found live
// (headroomPercent). c.mu is held.
func (c *collector) tuneLocked() {
	if c.headroom <= 0 {
		return
	}
	// GOGC's growth is of the live heap and of the roots the collector
	// scans, the goroutines' stacks and the globals.
	scanned := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(scanned)
	var base uint64
	for _, s := range scanned {
		if s.Value.Kind() != metrics.KindUint64 {
			return
		}
		base += s.Value.Uint64()
	}
	percent := headroomPercent(c.headroom, base)
	// Small moves are not worth the pacer's recomputing.
	if d := percent - c.percent; d > c.percent/10 || -d > c.percent/10 {
		c.percent = percent
		debug.SetGCPercent(percent)
	}
}

// headroomPercent is the GOGC with which the next collection comes once
// the heap grew by headroom past live (the live heap and the roots), or by
// live if that is more (Go's default, 100). A proxy's live heap is small
// (16 to 30 MB at 1000 calls/s) and its garbage comes fast: with Go's
// default it collects several times a second, marking what is live each
// time. A live heap under 4 MiB counts as 4 MiB: Go collects first once
// the heap reaches 4 MiB times GOGC/100, before any live heap is known.
func headroomPercent(headroom config.Size, live uint64) int {
	live = max(live, 4<<20)
	return int(min(max(100, uint64(headroom)*100/live), 100_000))
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
