package engine

import (
	"bytes"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goroutineID is the number runtime.Stack prints for the calling goroutine.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

// waitIdle waits until n workers of w wait for work (or fails the test).
func waitIdle(t *testing.T, w *workers, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); w.idleCount() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers idle, want %d", w.idleCount(), n)
		}
	}
}

func TestWorkers(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, w *workers)
	}{
		{"an idle worker takes the next function", func(t *testing.T, w *workers) {
			ids := make(chan string, 2)
			w.run(func() { ids <- goroutineID() })
			first := <-ids
			waitIdle(t, w, 1)
			w.run(func() { ids <- goroutineID() })
			if second := <-ids; second != first {
				t.Errorf("second function ran on goroutine %s, want the worker %s", second, first)
			}
		}},
		{"a blocked function does not hold up the next", func(t *testing.T, w *workers) {
			release := make(chan struct{})
			defer close(release)
			w.run(func() { <-release })
			done := make(chan struct{})
			w.run(func() { close(done) })
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the second function waited for the first")
			}
		}},
		{"every function runs, from many callers at once", func(t *testing.T, w *workers) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			ran := 0
			for range 50 {
				wg.Go(func() {
					for range 100 {
						wg.Add(1)
						w.run(func() {
							mu.Lock()
							ran++
							mu.Unlock()
							wg.Done()
						})
					}
				})
			}
			wg.Wait()
			if ran != 5000 {
				t.Errorf("%d functions ran, want 5000", ran)
			}
		}},
		{"the worker idle the shortest takes the next function", func(t *testing.T, w *workers) {
			ids := make(chan string, 3)
			releaseA, releaseB := make(chan struct{}), make(chan struct{})
			w.run(func() { <-releaseA; ids <- goroutineID() })
			w.run(func() { <-releaseB; ids <- goroutineID() })
			close(releaseA)
			<-ids
			waitIdle(t, w, 1)
			close(releaseB)
			last := <-ids
			waitIdle(t, w, 2)
			w.run(func() { ids <- goroutineID() })
			if got := <-ids; got != last {
				t.Errorf("the function ran on goroutine %s, want %s, the worker idle the shortest", got, last)
			}
		}},
		{"the workers of a burst end under a lighter load", func(t *testing.T, w *workers) {
			w.idleFor = 100 * time.Millisecond
			release := make(chan struct{})
			for range 8 {
				w.run(func() { <-release })
			}
			close(release)
			waitIdle(t, w, 8)
			// One function at a time, more often than the idle time: one
			// worker does them all, and the seven others end.
			done := make(chan struct{})
			for deadline := time.Now().Add(5 * time.Second); w.idleCount() > 1; {
				if time.Now().After(deadline) {
					t.Fatalf("%d workers still idle after 5 s of one function at a time", w.idleCount())
				}
				w.run(func() { done <- struct{}{} })
				<-done
				time.Sleep(5 * time.Millisecond)
			}
		}},
		{"a function handed over as its worker's idle time ends runs", func(t *testing.T, w *workers) {
			// Idle times as short as the gaps between functions: run and
			// a worker's timer race, and run may take a worker off the
			// stack just as it would retire.
			w.idleFor = 200 * time.Microsecond
			var ran atomic.Int64
			const n = 3000
			for i := range n {
				w.run(func() { ran.Add(1) })
				if i%3 == 0 {
					time.Sleep(time.Duration(i%400) * time.Microsecond)
				}
			}
			for deadline := time.Now().Add(5 * time.Second); ran.Load() < n; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d functions ran", ran.Load(), n)
				}
			}
		}},
		{"the workers of a burst end together", func(t *testing.T, w *workers) {
			w.idleFor = 50 * time.Millisecond
			release := make(chan struct{})
			before := runtime.NumGoroutine()
			for range 2000 {
				w.run(func() { <-release })
			}
			close(release)
			for deadline := time.Now().Add(5 * time.Second); w.idleCount() > 0 || runtime.NumGoroutine() > before; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d workers idle and %d goroutines 5 s after a burst, want none and %d", w.idleCount(), runtime.NumGoroutine(), before)
				}
			}
		}},
		{"idle workers size the stacks new goroutines start with", func(t *testing.T, w *workers) {
			// The collector sizes new stacks from the average in use among
			// the goroutines it scans; with four times as many idle workers
			// as there are other goroutines, mostly theirs.
			w.idleFor = 5 * time.Second
			n := max(256, 4*runtime.NumGoroutine())
			release := make(chan struct{})
			var started sync.WaitGroup
			started.Add(n)
			for range n {
				w.run(func() { started.Done(); <-release })
			}
			started.Wait()
			close(release)
			waitIdle(t, w, n)
			runtime.GC()
			sample := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
			metrics.Read(sample)
			if got := sample[0].Value.Uint64(); got < idleReserve {
				t.Errorf("new goroutines start with %d bytes of stack, want idleReserve (%d) or more", got, idleReserve)
			}
		}},
		{"an idle worker ends", func(t *testing.T, w *workers) {
			w.idleFor = 20 * time.Millisecond
			ids := make(chan string, 1)
			w.run(func() { ids <- goroutineID() })
			id := <-ids
			// Poll rather than sleep once: a loaded machine may run the
			// worker's timer late, but not by seconds.
			buf := make([]byte, 1<<20)
			for deadline := time.Now().Add(5 * time.Second); ; {
				all := buf[:runtime.Stack(buf, true)]
				if !bytes.Contains(all, []byte("goroutine "+id+" [")) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("worker %s still runs 5 s after its 20 ms idle time", id)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newWorkers()) })
	}
}

// deep uses about n KB of stack, as a message's path through the proxy does.
//
//go:noinline
func deep(n int) byte {
	var frame [1024]byte
	frame[n%1024] = byte(n)
	if n == 0 {
		return frame[0]
	}
	return deep(n-1) + frame[n%1024]
}

// BenchmarkWorkers compares a goroutine per function (sipgo's way) with
// the workers, for functions that need 12 KB of stack.
func BenchmarkWorkers(b *testing.B) {
	for _, bc := range []struct {
		name string
		run  func(w *workers, f func())
	}{
		{"goroutine", func(_ *workers, f func()) { go f() }},
		{"workers", func(w *workers, f func()) { w.run(f) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := newWorkers()
			done := make(chan struct{})
			f := func() {
				deep(12)
				done <- struct{}{}
			}
			for b.Loop() {
				bc.run(w, f)
				<-done
			}
		})
	}
}
