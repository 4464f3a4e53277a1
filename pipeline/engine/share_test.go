package engine

import (
	"cmp"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// scriptedSocket hands out datagrams from a script, each once the clock
// has reached its arrival: a read before that waits for it.
type scriptedSocket struct {
	net.PacketConn
	clock *time.Time
	cpu   *time.Duration // the reader's thread's CPU time
	start time.Time
	queue []scripted
	last  scripted // the datagram last read
}

// scriptedCopy is how long a read takes to copy a datagram: one of 52 KB
// under the race detector.
const scriptedCopy = 50 * time.Microsecond

// scripted is a datagram from src, arriving at, which costs the reader
// work once returned, and yield on a machine busy with other goroutines.
// While the reader has it, the OS may also stall the reader's thread (its
// wall-clock time, not its CPU's), and the goroutine may move to another
// thread.
type scripted struct {
	src               string
	at, work, yielded time.Duration
	stall             time.Duration
	moved             bool
}

func (s *scriptedSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(s.queue) == 0 {
		return 0, nil, io.EOF
	}
	s.last, s.queue = s.queue[0], s.queue[1:]
	if at := s.start.Add(s.last.at); s.clock.Before(at) {
		*s.clock = at
	}
	*s.clock = s.clock.Add(scriptedCopy)
	*s.cpu += scriptedCopy
	return 1, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s.last.src)), nil
}

// flow returns n datagrams from src, one every every, each costing work
// and yielded.
func flow(src string, n int, every, work, yielded time.Duration) []scripted {
	out := make([]scripted, n)
	for i := range out {
		out[i] = scripted{src: src, at: time.Duration(i) * every, work: work, yielded: yielded}
	}
	return out
}

// arrivals returns the datagrams of the flows in the order they arrive.
func arrivals(flows ...[]scripted) []scripted {
	out := slices.Concat(flows...)
	slices.SortStableFunc(out, func(a, b scripted) int { return cmp.Compare(a.at, b.at) })
	return out
}

// shareRun is what a readerShare let through of a script.
type shareRun struct {
	read    map[string]int
	used    map[string]time.Duration // the reader's time each source took
	waited  map[string]time.Duration // the longest a datagram of each waited
	elapsed time.Duration
	// saturated: the reader counted as saturated at some read
	saturated bool
	held      uint64 // the share's count of datagrams dropped
}

// runShare reads the script through a readerShare that trusts trusted.
func runShare(script []scripted, trusted string) shareRun {
	start := time.Unix(1000, 0)
	clock := start
	// the CPU time of the thread the reader runs on: another's after a
	// move, a total of its own
	cpu, thread := time.Duration(0), time.Duration(0)
	sock := &scriptedSocket{clock: &clock, cpu: &cpu, start: start, queue: script}
	r := newReaderShare(sock, func(a netip.Addr) bool { return trusted != "" && a == netip.MustParseAddrPort(trusted).Addr() },
		slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return clock }
	r.cpu = func() time.Duration { return thread + cpu }
	run := shareRun{read: map[string]int{}, used: map[string]time.Duration{}, waited: map[string]time.Duration{}}
	for {
		if _, _, err := r.ReadFrom(nil); err != nil {
			break
		}
		d := sock.last
		run.saturated = run.saturated || r.backlog >= shareBacklog
		run.read[d.src]++
		run.waited[d.src] = max(run.waited[d.src], clock.Sub(start.Add(d.at)))
		// The other goroutines run on the reader's thread during its turn.
		r.wait = func() { clock = clock.Add(d.yielded); cpu += d.yielded }
		r.yield()
		clock = clock.Add(d.work + d.stall)
		cpu += d.work
		if d.moved {
			thread += time.Hour
		}
		run.used[d.src] += d.work
	}
	run.elapsed = clock.Sub(start)
	run.held = r.held.Load()
	return run
}

// TestReaderShare: while the reader is saturated, a source that takes
// more than half of it has the excess of its datagrams dropped, so that
// the others' wait no more than a few of its datagrams; its share counts
// what parsing costs, not the turn the reader gives other goroutines, nor
// the time the OS took the reader away, nor more than shareCharge for one
// datagram from a full bucket; and a source alone, a fair share, a reader
// that keeps up, a trusted source and stalls of the machine are left
// alone.
func TestReaderShare(t *testing.T) {
	const (
		heavy = "192.0.2.66:5060"
		phone = "192.0.2.10:5060"
	)
	ms := time.Millisecond
	phones := flow(phone, 100, 20*ms, ms/10, 0)
	// A source that uses a fraction of the reader, but whose datagrams
	// come while the reader yields (phones on the same machine answer
	// during inTurn), so that the reader counts as saturated; on one of
	// them the reader is taken away for longer than a bucket holds: the
	// OS or the collector, not the datagram. The reader yields once every
	// yieldEvery datagrams, for the turns of them all. The collector's
	// work is the reader's CPU time (an assist), capped from a full
	// bucket; the OS's is not, and is charged, as wall-clock time, only
	// when the goroutine moved to another thread meanwhile. The OS stalls
	// two datagrams in a row: charged by the wall clock, the first would
	// leave the second's bucket not full, and the second would empty it.
	stalled := flow(heavy, 20, ms/5, ms/50, yieldEvery*ms/5)
	stalled[4].work = 3 * shareBurst
	stalledOS := flow(heavy, 20, ms/5, ms/50, yieldEvery*ms/5)
	stalledOS[4].stall, stalledOS[5].stall = 3*shareBurst, 3*shareBurst
	stalledMoved := flow(heavy, 20, ms/5, ms/50, yieldEvery*ms/5)
	stalledMoved[4].stall, stalledMoved[4].moved = 3*shareBurst, true
	// Two sources that each take 45 % of a saturated reader's CPU, one of
	// them on a reader that the OS takes away for 5 ms at every tenth of
	// its datagrams (SIPp and the proxy sharing the cores): charged as
	// wall-clock time, the stalls would take it past half the reader. Its
	// goroutine also moves to another thread over one datagram, which is
	// then charged the wall clock's time, not the two threads' difference.
	busy := flow(heavy, 400, ms, 450*time.Microsecond, 0)
	for i := range busy {
		if i%10 == 9 {
			busy[i].stall = 5 * ms
		}
	}
	busy[3].moved = true
	busy = arrivals(busy, flow(phone, 400, ms, 450*time.Microsecond, 0))
	// A dear source alone on a reader the OS takes away for longer than
	// each datagram's work: charged its CPU time, it would be refilled
	// faster than it is charged, were the stalls counted in its refill.
	dearStalled := flow(heavy, 400, ms, ms, 0)
	for i := range dearStalled {
		dearStalled[i].stall = 3 * ms / 2
	}
	tests := []struct {
		what    string
		script  []scripted
		trusted string
		// the least of the heavy source's datagrams read, and of its
		// share of the reader's time; the longest a phone's datagram may
		// wait
		minRead  int
		minShare float64
		maxWait  time.Duration
		// the script must saturate the reader
		saturated bool
	}{
		// 1000 OPTIONS a second, each 0.1 ms to parse, on a machine so
		// loaded that the reader waits 0.95 ms a datagram for its turn:
		// the reader is saturated, but the source takes a tenth of it.
		{"cheap, on a loaded machine", arrivals(flow(heavy, 2000, ms, ms/10, yieldEvery*950*time.Microsecond), phones), "", 2000, 0, 0, true},
		{"dear, twice what the reader does", arrivals(flow(heavy, 400, 5*ms, 10*ms, 0), phones), "", 0, 0.6, 40 * ms, true},
		{"dear, alone", flow(heavy, 400, 5*ms, 10*ms, 0), "", 0, 0.8, 0, true},
		{"two dear, half each", arrivals(flow(heavy, 200, 10*ms, 10*ms, 0), flow(phone, 200, 10*ms, 10*ms, 0)), "", 0, 0.4, 0, true},
		{"a reader that keeps up", arrivals(flow(heavy, 200, 10*ms, 6*ms, 0), phones), "", 200, 0, 50 * ms, false},
		{"dear, trusted", arrivals(flow(heavy, 400, 5*ms, 10*ms, 0), phones), heavy, 400, 0, 0, true},
		// Each datagram costs more than shareCharge: the source never
		// has a full bucket, and is charged in full.
		{"dearer than a charge, twice what the reader does", arrivals(flow(heavy, 300, 7*ms, 15*ms, 0), phones), "", 0, 0.4, 40 * ms, true},
		{"cheap, alone, one stall of the machine", stalled, "", 20, 0, 0, true},
		{"cheap, one stall of the machine", arrivals(stalled, phones), "", 20, 0, 0, true},
		{"cheap, the OS stalls the reader", arrivals(stalledOS, phones), "", 20, 0, 0, true},
		{"cheap, the OS stalls the reader, which moves to another thread", arrivals(stalledMoved, phones), "", 20, 0, 0, true},
		{"two just under half each, the OS stalling the reader", busy, "", 400, 0, 0, true},
		{"dear, the OS stalling the reader", arrivals(dearStalled, phones), "", 0, 0, 100 * ms, true},
	}
	for i, tc := range tests {
		run := runShare(tc.script, tc.trusted)
		share := float64(run.used[heavy]) / float64(run.elapsed)
		if run.read[heavy] < tc.minRead || share < tc.minShare {
			t.Errorf("test %d (%s): %d of the heavy source's datagrams read, %.2f of the reader, want at least %d and %.2f",
				i, tc.what, run.read[heavy], share, tc.minRead, tc.minShare)
		}
		if tc.maxWait > 0 && run.waited[phone] > tc.maxWait {
			t.Errorf("test %d (%s): a phone's datagram waited %v, want at most %v", i, tc.what, run.waited[phone], tc.maxWait)
		}
		read := 0
		for _, n := range run.read {
			read += n
		}
		if want := uint64(len(tc.script) - read); run.held != want {
			t.Errorf("test %d (%s): %d datagrams counted as held back, want %d", i, tc.what, run.held, want)
		}
		// A source left alone only because the reader kept up would
		// test nothing of the share.
		if tc.saturated && !run.saturated {
			t.Errorf("test %d (%s): the reader never counted as saturated", i, tc.what)
		}
	}
}

// TestReaderShareBounded: the sources with a bucket are bounded.
func TestReaderShareBounded(t *testing.T) {
	clock := time.Unix(1000, 0)
	var script []scripted
	for i := range shareMaxTracked + 100 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5060)
		script = append(script, scripted{src: ap.String(), work: time.Microsecond})
	}
	var cpu time.Duration
	sock := &scriptedSocket{clock: &clock, cpu: &cpu, start: clock, queue: script}
	r := newReaderShare(sock, nil, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return clock }
	r.cpu = func() time.Duration { return cpu }
	for {
		if _, _, err := r.ReadFrom(nil); err != nil {
			break
		}
		clock = clock.Add(sock.last.work)
		cpu += sock.last.work
	}
	if n := len(r.buckets); n > shareMaxTracked {
		t.Errorf("%d sources with a bucket, want at most %d", n, shareMaxTracked)
	}
}

// TestReaderShareCharge: what one datagram is charged, by the wall clock
// and the thread's CPU time over it, and what its source's bucket holds
// after.
func TestReaderShareCharge(t *testing.T) {
	ms := time.Millisecond
	src := netip.MustParseAddr("192.0.2.10")
	tests := []struct {
		what       string
		left       time.Duration // the bucket, as of the datagram's return
		wall       time.Duration
		cpuAt, cpu time.Duration // -1: could not be read
		want       time.Duration // the bucket after
		cpuRead    bool          // the CPU time is read at the next read
		walled     bool          // a stall charged by the wall clock, and counted
	}{
		{"within shareStall: the wall clock's", 5 * ms, shareStall, 0, 0, 5*ms + shareStall/2 - shareStall, false, false},
		{"the CPU time", 5 * ms, 4 * ms, 10 * ms, 11 * ms, 5*ms + ms/2 - ms, true, false},
		{"the CPU time, none read at the return", 5 * ms, 4 * ms, -1, 11 * ms, 5*ms + 2*ms - 4*ms, false, true},
		{"the CPU time, none read at the next read", 5 * ms, 4 * ms, 10 * ms, -1, 5*ms + 2*ms - 4*ms, true, true},
		{"another thread, behind", 5 * ms, 4 * ms, 10 * ms, 9 * ms, 5*ms + 2*ms - 4*ms, true, true},
		{"another thread, ahead", 5 * ms, 4 * ms, 10 * ms, 15 * ms, 5*ms + 2*ms - 4*ms, true, true},
		{"a collector's assist from a full bucket: shareCharge", shareBurst, 50 * ms, 10 * ms, 60 * ms, shareBurst - shareCharge, true, false},
		{"down to -shareBurst at most", 5 * ms, 50 * ms, 10 * ms, 60 * ms, -shareBurst, true, false},
	}
	for _, tc := range tests {
		start := time.Unix(1000, 0)
		r := newReaderShare(nil, nil, slog.New(slog.DiscardHandler))
		read := false
		r.cpu = func() time.Duration { read = true; return tc.cpu }
		r.buckets[src] = bucket{tc.left, start}
		r.src, r.returned, r.cpuAt = src, start, tc.cpuAt
		r.charge(start.Add(tc.wall))
		// The bucket is as of the charge: a stall left out is not
		// refilled later either.
		if got := r.buckets[src]; got.left != tc.want || !got.at.Equal(start.Add(tc.wall)) || read != tc.cpuRead {
			t.Errorf("%s: bucket %v as of %v after, CPU time read %v; want %v as of %v, %v",
				tc.what, got.left, got.at, read, tc.want, start.Add(tc.wall), tc.cpuRead)
		}
		if walled := r.walled == 1; walled != tc.walled {
			t.Errorf("%s: %d stalls counted as charged by the wall clock, want %v", tc.what, r.walled, tc.walled)
		}
	}
}

// TestReaderShareYields: the reader gives the other goroutines their turn
// once every yieldEvery datagrams handed on, and the datagram's cost is
// counted from the end of that turn, in wall-clock and in CPU time.
func TestReaderShareYields(t *testing.T) {
	clock := time.Unix(1000, 0)
	var cpu time.Duration
	r := newReaderShare(fixedSocket{from: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5060}}, nil, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return clock }
	r.cpu = func() time.Duration { return cpu }
	waits := 0
	r.wait = func() { waits++; clock = clock.Add(time.Millisecond); cpu += time.Millisecond }
	for _, n := range []int{1, yieldEvery - 1, yieldEvery, 3*yieldEvery + 1} {
		waits = 0
		r.handed.Store(0)
		for range n {
			if _, _, err := r.ReadFrom(nil); err != nil {
				t.Fatal(err)
			}
			r.yield()
		}
		if want := n / yieldEvery; waits != want {
			t.Errorf("%d datagrams handed on: %d turns given, want %d", n, waits, want)
		}
		if n%yieldEvery == 0 && (!r.returned.Equal(clock) || r.cpuAt != cpu) {
			t.Errorf("%d datagrams handed on: the last one's cost counted from %v and %v of CPU, want the end of the turn, %v and %v",
				n, r.returned, r.cpuAt, clock, cpu)
		}
	}
}

// BenchmarkReaderShare measures what readerShare adds to a datagram: two
// readings of the clock around the read, one of the thread's CPU time (a
// system call), a reading of each after the yield every yieldEvery
// datagrams, and a bucket's update.
func BenchmarkReaderShare(b *testing.B) {
	r := newReaderShare(fixedSocket{from: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5060}}, nil, slog.New(slog.DiscardHandler))
	r.wait = func() {}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.ReadFrom(nil); err != nil {
			b.Fatal(err)
		}
		r.yield()
	}
}

// fixedSocket reads a datagram from the same source, at once, forever.
type fixedSocket struct {
	net.PacketConn
	from *net.UDPAddr
}

func (s fixedSocket) ReadFrom([]byte) (int, net.Addr, error) { return 1, s.from, nil }
