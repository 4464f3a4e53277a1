package engine

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// memory is the process's memory after a garbage collection that returned
// what it could to the system.
type memory struct {
	heapInuse, heapSys uint64 // bytes
	rss                uint64 // bytes (VmRSS), 0 where there is no /proc
	goroutines         int
}

func (m memory) String() string {
	return fmt.Sprintf("heap in use %.1f MB, heap from the system %.1f MB, RSS %.1f MB, %d goroutines",
		float64(m.heapInuse)/1e6, float64(m.heapSys)/1e6, float64(m.rss)/1e6, m.goroutines)
}

func measureMemory() memory {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{heapInuse: ms.HeapInuse, heapSys: ms.HeapSys - ms.HeapReleased, goroutines: runtime.NumGoroutine()}
	m.rss = rss()
	return m
}

// rss returns the process's resident size (VmRSS), or 0 without /proc.
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// floodSize is the number of messages a flood test sends: n, or
// SWITCHBOARD_FLOOD when set (make attack-memory sets the full size).
func floodSize(n int) int {
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_FLOOD")); err == nil && v > 0 {
		return v
	}
	return n
}

// TestMemoryAfterInviteFlood sends INVITEs that the callee never answers
// (each ends in 408 at fr_timeout, never ACKed; what a late answer would
// need is kept until Timer B, here 2 s, and server.linger) and checks
// that once every transaction has ended the heap goes back down by
// itself, without the two minutes an idle Go process waits for its next
// collection.
// SWITCHBOARD_FLOOD sets the number of INVITEs, SWITCHBOARD_FR_TIMEOUT how
// long each is held; with SWITCHBOARD_WAIT set the test logs the memory
// every 5 s for 200 s; SWITCHBOARD_HEAPPROFILE names a file for the heap
// profile at the end.
func TestMemoryAfterInviteFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood")
	}
	n := floodSize(4000)
	timerH, timerB := sip.Timer_H, sip.Timer_B
	sip.Timer_H, sip.Timer_B = time.Second, 2*time.Second
	t.Cleanup(func() { sip.Timer_H, sip.Timer_B = timerH, timerB })
	e := forwardingEngine(t, fmt.Sprintf("max_transactions = %d\nmax_invites_per_source = -1\nmax_invites_per_callee = -1", 4*n), `fr_timeout = "`+floodTimeout()+`"`)
	if os.Getenv("SWITCHBOARD_WAIT") == "" {
		e.release.least, e.release.delay = 100, 2*time.Second
	}
	e.Start()
	proxy, _ := net.ResolveUDPAddr("udp4", e.testAddr("UDP"))
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The flooder never reads what comes back (a forged source).
	flooder, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	p := &peer{t: t, conn: flooder}
	before := measureMemory()
	start := time.Now()
	peak := int64(0)
	for i := range n {
		inv := p.invite(fmt.Sprintf("sip:u%d@%s", i, silent.LocalAddr()), fmt.Sprintf("flood-%d", i))
		if _, err := flooder.WriteToUDP([]byte(inv.String()), proxy); err != nil {
			t.Fatal(err)
		}
		if i%200 == 199 {
			peak = max(peak, e.held())
			time.Sleep(time.Millisecond) // within the socket's receive buffer
		}
	}
	var top uint64
	deadline := time.Now().Add(time.Minute)
	for e.held() > 0 {
		peak = max(peak, e.held())
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		top = max(top, ms.HeapInuse)
		if time.Now().After(deadline) {
			t.Fatalf("%d transactions still held a minute after the flood", e.held())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ended := time.Now()
	t.Logf("%d INVITEs, at most %d transactions held, all ended after %s", n, peak, ended.Sub(start).Round(time.Millisecond))
	t.Logf("before the flood: %s", before)
	if os.Getenv("SWITCHBOARD_WAIT") != "" {
		// How the memory goes down by itself, with no collection forced.
		for i := range 41 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("%3d s after: heap in use %.1f MB, kept from the system %.1f MB, RSS %.1f MB, %d goroutines, %d collections",
				5*i, float64(ms.HeapInuse)/1e6, float64(ms.HeapSys-ms.HeapReleased)/1e6, float64(rss())/1e6, runtime.NumGoroutine(), ms.NumGC)
			time.Sleep(5 * time.Second)
		}
	} else {
		// The engine gives the memory back (no collection forced here):
		// without it the heap stays at its top for the two minutes until
		// Go's idle collection. What the engine keeps (its maps grown to
		// the flood's size, the idle workers) is 6-7 MB of a top of
		// 15-18 MB, so the goal is a quarter of what the flood added.
		goal := before.heapInuse + (top-before.heapInuse)*3/4
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= goal {
				t.Logf("heap in use %.1f MB (at most %.1f MB during the flood) %s after the last transaction ended",
					float64(ms.HeapInuse)/1e6, float64(top)/1e6, time.Since(ended).Round(100*time.Millisecond))
				break
			}
			if time.Since(ended) > 20*time.Second {
				t.Fatalf("heap in use %.1f MB 20 s after the flood (%.1f MB at most during it, %.1f MB before)",
					float64(ms.HeapInuse)/1e6, float64(top)/1e6, float64(before.heapInuse)/1e6)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	after := measureMemory()
	t.Logf("after, collected: %s", after)
	if path := os.Getenv("SWITCHBOARD_HEAPPROFILE"); path != "" {
		writeHeapProfile(t, path)
		f, _ := os.Create(path + ".goroutines")
		_ = pprof.Lookup("goroutine").WriteTo(f, 1)
		f.Close()
	}
}

func writeHeapProfile(t testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

// floodTimeout is the fr_timeout of the flood: SWITCHBOARD_FR_TIMEOUT, or
// 1s.
func floodTimeout() string {
	if v := os.Getenv("SWITCHBOARD_FR_TIMEOUT"); v != "" {
		return v
	}
	return "1s"
}
