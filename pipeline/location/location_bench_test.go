package location_test

// Benchmarks of the location store: Lookup and Update of one AOR among
// 10^3 and 10^6 registrations in memory, among 10^3 and 10^4 in bolt,
// Lookup and Update from every CPU at once (lock contention), bolt's
// Updates from many goroutines at once (group commit), the memory
// one registration takes, the memory store's sweep when none is due, and
// what holding registrations costs a garbage collection.
//
//	go test -run '^$' -bench . -benchmem ./pipeline/location/
//
// Each store is filled once per benchmark (b.Loop runs the set-up once),
// with bindings like those the registrar writes for a phone.

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// sizes are the numbers of registrations measured, per backend.
var sizes = map[string][]int{
	"memory": {1_000, 1_000_000},
	"bolt":   {1_000, 10_000},
}

// registration returns the binding the registrar writes for user i's phone.
func registration(i int, now time.Time) location.Binding {
	n := strconv.Itoa(i)
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	return location.Binding{
		Contact:   "sip:u" + n + "@" + ip + ":5060;transport=udp",
		CallID:    "a84b4c76e66710-" + n + "@" + ip,
		CSeq:      1,
		Expires:   now.Add(time.Hour),
		Received:  ip + ":5060",
		Transport: "UDP",
		Updated:   now,
	}
}

func aor(i int) string { return "u" + strconv.Itoa(i) }

// fill registers users 0..n-1 in s, one binding each, through Update as
// the registrar does.
func fill(b *testing.B, s location.Store, n int, now time.Time) {
	for i := range n {
		bd := registration(i, now)
		if _, err := s.Update(aor(i), now, func([]location.Binding) ([]location.Binding, error) {
			return []location.Binding{bd}, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// newStore returns an empty store of the backend, closed when b ends.
func newStore(b *testing.B, backend string) location.Store {
	var s location.Store
	switch backend {
	case "memory":
		s = location.NewMemory()
	case "bolt":
		bs, err := location.NewBolt(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		s = bs
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// sample returns k AORs among the n registered, at random.
func sample(n, k int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, k)
	for i := range out {
		out[i] = aor(r.IntN(n))
	}
	return out
}

// BenchmarkLookup is the location stage's read: the bindings of one user
// among n.
func BenchmarkLookup(b *testing.B) {
	eachStore(b, func(b *testing.B, s location.Store, key string, now time.Time) {
		bs, _, err := s.Lookup(key, now)
		if err != nil || len(bs) != 1 {
			b.Fatalf("lookup %s: %d bindings, %v", key, len(bs), err)
		}
	})
}

// BenchmarkUpdate is the registrar's write: a phone's re-REGISTER (its
// binding replaced, a higher CSeq) among n users.
func BenchmarkUpdate(b *testing.B) {
	eachStore(b, func(b *testing.B, s location.Store, key string, now time.Time) {
		refresh(b, s, key, now)
	})
}

// eachStore runs op in a loop on one of n registered users at random, for
// every backend and size.
func eachStore(b *testing.B, op func(b *testing.B, s location.Store, key string, now time.Time)) {
	for _, backend := range []string{"memory", "bolt"} {
		for _, n := range sizes[backend] {
			b.Run(fmt.Sprintf("%s/%d", backend, n), func(b *testing.B) {
				now := time.Now()
				s := newStore(b, backend)
				fill(b, s, n, now)
				keys := sample(n, 4096)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					op(b, s, keys[i&4095], now)
					i++
				}
			})
		}
	}
}

// refresh re-registers the phone of aor with a higher CSeq.
func refresh(b *testing.B, s location.Store, key string, now time.Time) {
	_, err := s.Update(key, now, func(cur []location.Binding) ([]location.Binding, error) {
		if len(cur) != 1 {
			return nil, fmt.Errorf("%s has %d bindings", key, len(cur))
		}
		cur[0].CSeq++
		cur[0].Expires = now.Add(time.Hour)
		return cur, nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMemoryParallel is calls and registrations from every CPU at
// once on 10^5 users: one Update for every nine Lookups. Read against
// BenchmarkLookup it shows what the shard locks cost under contention
// (go test -bench MemoryParallel -cpu 1,2 -mutexprofile mutex.out).
func BenchmarkMemoryParallel(b *testing.B) {
	const n = 100_000
	now := time.Now()
	s := newStore(b, "memory")
	fill(b, s, n, now)
	keys := sample(n, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(4096)
		for pb.Next() {
			key := keys[i&4095]
			if i%10 == 0 {
				refresh(b, s, key, now)
			} else if _, _, err := s.Lookup(key, now); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkBoltParallel is re-REGISTERs of 10^4 users from many
// goroutines at once, as the registrar writes under load: the writes
// that wait share a transaction and its fsync (group commit), so the time
// per write falls below BenchmarkUpdate/bolt's one fsync each.
func BenchmarkBoltParallel(b *testing.B) {
	const n = 10_000
	now := time.Now()
	s := newStore(b, "bolt")
	fill(b, s, n, now)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(n)
		for pb.Next() {
			refresh(b, s, aor(i%n), now)
			i++
		}
	})
}

// BenchmarkMemoryPerRegistration measures the heap that n registrations
// take in a Memory store, the AOR strings and the bindings included: the
// B/registration metric; and the resident memory of the whole test process
// once they are in (MiB-RSS, Linux only), garbage collector's headroom
// included. It also times a Lookup among them.
func BenchmarkMemoryPerRegistration(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			now := time.Now()
			before := heapInUse()
			s := location.NewMemory()
			fill(b, s, n, now)
			after := heapInUse()
			if aors, bindings := s.Count(); aors != n || bindings != n {
				b.Fatalf("%d AORs and %d bindings, want %d", aors, bindings, n)
			}
			keys := sample(n, 4096)
			i := 0
			for b.Loop() {
				if _, _, err := s.Lookup(keys[i&4095], now); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(after-before)/float64(n), "B/registration")
			if rss, err := residentMiB(); err == nil {
				b.ReportMetric(rss, "MiB-RSS")
			}
			runtime.KeepAlive(s)
		})
	}
}

// heapInUse returns the bytes of live heap objects after a full GC.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// residentMiB returns the resident set of this process (VmRSS), in MiB.
func residentMiB() (float64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// BenchmarkSweep is the engine's sweep of a store, once a second: among n
// registrations none of which is due, as in most seconds. Bolt sweeps at
// most every 30 s, or when the clock goes back: the times alternate.
func BenchmarkSweep(b *testing.B) {
	for _, backend := range []string{"memory", "bolt"} {
		for _, n := range sizes[backend] {
			b.Run(backend+"/"+strconv.Itoa(n), func(b *testing.B) {
				s := newStore(b, backend)
				now := time.Now()
				fill(b, s, n, now)
				at := [2]time.Time{now.Add(time.Minute), now.Add(2 * time.Minute)}
				i := 0
				for b.Loop() {
					if removed := s.Sweep(at[i&1]); removed != 0 {
						b.Fatalf("swept %d bindings, want none", removed)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkMemoryGC measures what holding n registrations costs each
// garbage collection: the time of a full collection with the store the
// heap's main content (the collector marks every object at each cycle).
func BenchmarkMemoryGC(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s := location.NewMemory()
			fill(b, s, n, time.Now())
			runtime.GC()
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(s)
		})
	}
}

// BenchmarkBoltRegister is a flood of REGISTERs from new users, as the
// harness sends them, from many goroutines at once: each Update inserts a
// record. Besides the time it reports the CPU (user and system, the
// fsyncs' included) the process spent per write: on a machine whose disk
// syncs slowly the time is the disk's, the CPU is what a write costs;
// and the size of the file per registration.
func BenchmarkBoltRegister(b *testing.B) {
	now := time.Now()
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := location.NewBolt(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	cpu := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			bd := registration(i, now)
			if _, err := s.Update(aor(i), now, func([]location.Binding) ([]location.Binding, error) {
				return []location.Binding{bd}, nil
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/float64(b.N), "file-B/registration")
	}
}

// processCPU returns the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
