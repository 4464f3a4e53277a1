package engine

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A UDP socket has one reader: sipgo reads a datagram, the read filter
// runs, sipgo parses it, and only then hands it to a goroutine of its own.
// Parsing is linear in the size, but a datagram of 64 KB of Route or
// Contact values still takes milliseconds, and ratelimit counts packets,
// not their cost, in a window that may open with a burst: one source could
// keep the reader busy while every other source's datagrams wait behind.

const (
	// shareBurst is the reader's time a source may take above its share
	// (half the reader's time) before its datagrams are dropped while
	// others wait: the size of its bucket.
	shareBurst = 20 * time.Millisecond
	// shareCharge is the most one datagram is charged from a full bucket:
	// a stall the CPU time does not leave out (the collector's, or one
	// charged by the wall clock) leaves a source that had not been using
	// the reader half its bucket, above the empty one that drops.
	shareCharge = shareBurst / 2
	// shareBacklog is how many reads in a row must find a datagram
	// waiting for the reader to count as saturated.
	shareBacklog = 3
	// shareWaiting is how soon a read returns when its datagram was
	// already waiting (a copy of up to 64 KB, slower under the race
	// detector): a read that parks for the next datagram takes longer,
	// unless they come more often than this.
	shareWaiting = 200 * time.Microsecond
	// shareStall is the wall-clock time over a datagram past which the
	// reader may have been stalled: the datagram is then charged its
	// thread's CPU time, read a second time only then.
	shareStall = 200 * time.Microsecond
	// shareSweep is how often the buckets that have filled up again are
	// forgotten.
	shareSweep = time.Second
	// shareMaxTracked bounds the sources with a bucket; the others are
	// not counted.
	shareMaxTracked = 4096
)

// readerShare is a UDP socket as sipgo's reader sees it. It charges each
// source the reader's time over its datagrams (see charge) from a bucket
// refilled at half the wall clock's pace and holding shareBurst at most.
// While the reader is saturated (shareBacklog reads in a row found a
// datagram waiting), a datagram from a source whose bucket is empty is
// dropped unparsed: only what a source takes above half the reader, and
// only while others may wait behind it. A source in trusted is never
// dropped.
type readerShare struct {
	net.PacketConn
	local   net.Addr // the socket's address, as it returns it (compared by pointer)
	now     func() time.Time
	cpu     func() time.Duration // the calling thread's CPU time, -1 if unknown (threadCPU)
	wait    func()               // gives the other goroutines their turn
	trusted func(netip.Addr) bool
	log     *slog.Logger

	src      netip.Addr    // the source of the datagram last returned, while the reader has it
	returned time.Time     // when it was returned, or the end of its turn
	cpuAt    time.Duration // the thread's CPU time then, or -1 when it could not be read
	backlog  int           // reads in a row that found a datagram waiting
	swept    time.Time
	buckets  map[netip.Addr]bucket
	reported netip.Addr // the source last logged as held back
	// walled counts the datagrams past shareStall charged by the wall
	// clock (the CPU time unreadable, or the reader moved to another
	// thread), for the line that names a source held back.
	walled uint64
	// reading is closed at sipgo's first read: sipgo has the socket in
	// its pool then, and sends from it (see awaitUDP).
	reading     chan struct{}
	readingOnce sync.Once

	// stamped is the socket when the kernel stamps each datagram with
	// its arrival (stampArrivals): queued is then told how long every
	// stampEvery-th waited to be read.
	stamped msgReader
	oob     []byte
	queued  func(wait time.Duration, now time.Time)
	reads   uint
	handed  atomic.Uint64 // datagrams handed on, for yieldEvery (and tests)
	held    atomic.Uint64 // datagrams dropped unparsed (switchboard_udp_held_back_total)
}

// msgReader is a UDP socket that reads a datagram with its control
// messages: *net.UDPConn, rawUDP.
type msgReader interface {
	syscall.Conn
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
}

// stampEvery is how often a read asks for the datagram's arrival time: a
// read with its control message (recvmsg) costs about twice a plain one
// (docs/benchmarks.md), and the least wait of an interval needs only a
// sample.
const stampEvery = 8

// bucket is the reader's time a source may still take at once, as of at.
type bucket struct {
	left time.Duration
	at   time.Time
}

// refilled returns b as of now: half the time since at added, up to
// shareBurst.
func (b bucket) refilled(now time.Time) bucket {
	return bucket{min(b.left+now.Sub(b.at)/2, shareBurst), now}
}

func newReaderShare(c net.PacketConn, trusted func(netip.Addr) bool, log *slog.Logger) *readerShare {
	return &readerShare{PacketConn: c, now: time.Now, cpu: threadCPU, wait: runtime.Gosched,
		trusted: trusted, log: log, buckets: make(map[netip.Addr]bucket), reading: make(chan struct{})}
}

// ReadFrom returns the next datagram not dropped to share the reader.
func (r *readerShare) ReadFrom(b []byte) (int, net.Addr, error) {
	r.readingOnce.Do(func() { close(r.reading) })
	for {
		asked := r.now()
		r.charge(asked)
		n, addr, arrived, err := r.read(b)
		if err != nil || addr == nil {
			return n, addr, err
		}
		now := r.now()
		if !arrived.IsZero() {
			r.queued(now.Sub(arrived), now)
		}
		if now.Sub(asked) < shareWaiting {
			r.backlog++
		} else {
			r.backlog = 0
		}
		if now.Sub(r.swept) >= shareSweep {
			r.sweep(now)
		}
		src := addrPort(addr).Addr()
		if r.backlog >= shareBacklog && r.over(src, now) {
			continue
		}
		r.src, r.returned, r.cpuAt = src, now, r.cpu()
		return n, addr, nil
	}
}

// read reads the next datagram, with the time it arrived when the kernel
// stamped it and the read asks (every stampEvery-th).
func (r *readerShare) read(b []byte) (int, net.Addr, time.Time, error) {
	r.reads++
	if r.stamped == nil || r.reads%stampEvery != 0 {
		n, addr, err := r.PacketConn.ReadFrom(b)
		return n, addr, time.Time{}, err
	}
	n, oobn, _, ap, err := r.stamped.ReadMsgUDPAddrPort(b, r.oob)
	if err != nil {
		return n, nil, time.Time{}, err
	}
	arrived, _ := arrivedAt(r.oob[:oobn])
	return n, net.UDPAddrFromAddrPort(ap), arrived, nil
}

// yieldEvery is how many datagrams the reader hands on between two
// yields. A yield at every datagram kept reading and handling in lockstep
// on one P: the reader waited for the goroutines it had just started
// while its socket filled and the other core had time to spare
// (docs/benchmarks.md, the eleventh round). The scheduler runs the newest
// goroutine of a batch first, so a datagram may be overtaken by the last
// of its batch, or of the next when the reader's turn comes before the
// batch ran: about two batches, which TestEngineKeepsOrder allows.
const yieldEvery = 8

// yield lets the other goroutines run, on the reader, once every
// yieldEvery datagrams handed on; the datagram's cost is counted from the
// end of the wait.
func (r *readerShare) yield() {
	if r.handed.Add(1)%yieldEvery != 0 {
		return
	}
	r.wait()
	r.returned, r.cpuAt = r.now(), r.cpu()
}

// charge takes the reader's time over the datagram last returned from its
// source's bucket: from the read that returned it, or the end of the
// reader's turn (inTurn: the machine's load, not the datagram's cost), to
// now. Past shareStall it is the thread's CPU time, so that a stall of the
// machine (another process on the reader's core; the host taking the
// virtual CPU away, where the kernel accounts steal time) is charged to no
// one, nor refills the bucket of the source it fell on. A difference of CPU
// times below zero or over the wall clock's is taken for a move to another
// thread (two threads' totals), and the wall clock's is charged, as it is
// where the CPU time cannot be read. From a full bucket one datagram takes
// shareCharge at most; a bucket goes down to -shareBurst at most: a source
// that took the reader while it was idle owes little for it.
func (r *readerShare) charge(now time.Time) {
	if !r.src.IsValid() {
		return
	}
	src := r.src
	r.src = netip.Addr{}
	b, ok := r.buckets[src]
	if !ok {
		if len(r.buckets) >= shareMaxTracked {
			return
		}
		b = bucket{shareBurst, r.returned}
	}
	cost, stalled := now.Sub(r.returned), time.Duration(0)
	if cost > shareStall {
		if d, ok := r.cpuSince(); ok && d <= cost {
			cost, stalled = d, cost-d
		} else {
			r.walled++
		}
	}
	if b.refilled(r.returned).left >= shareBurst {
		cost = min(cost, shareCharge)
	}
	b = b.refilled(now.Add(-stalled))
	b.at = now
	b.left = max(b.left-cost, -shareBurst)
	r.buckets[src] = b
}

// cpuSince returns the reader's thread's CPU time since cpuAt, or false
// when either reading is missing or the difference is below zero.
func (r *readerShare) cpuSince() (time.Duration, bool) {
	if r.cpuAt < 0 {
		return 0, false
	}
	d := r.cpu() - r.cpuAt
	return d, d >= 0
}

// over reports whether src has taken its share and more, and is not
// trusted.
func (r *readerShare) over(src netip.Addr, now time.Time) bool {
	b, ok := r.buckets[src]
	if !ok || b.refilled(now).left > 0 || r.trusted != nil && r.trusted(src) {
		return false
	}
	r.held.Add(1)
	if src != r.reported {
		r.reported = src
		r.log.Info("udp source held back: it took more than half of the socket's reader", "source", src.String(),
			"stalls_charged_by_wall_clock", r.walled)
	}
	return true
}

// sweep forgets the buckets that are full again.
func (r *readerShare) sweep(now time.Time) {
	for s, b := range r.buckets {
		if b.refilled(now).left >= shareBurst {
			delete(r.buckets, s)
		}
	}
	r.swept = now
}

// addShare returns the UDP socket c wrapped in a readerShare that spares
// the sources in [server] trusted_sources, and adds it to the engine's.
func (e *Engine) addShare(c net.PacketConn) *readerShare {
	r := newReaderShare(c, e.trustedSource, e.log)
	r.local = c.LocalAddr()
	if m, ok := c.(msgReader); ok && stampArrivals(m) {
		r.stamped, r.oob, r.queued = m, make([]byte, stampOOB), e.overload.queuedIn()
	}
	var list []*readerShare
	if l := e.shares.Load(); l != nil {
		list = *l
	}
	list = append(slices.Clip(list), r)
	e.shares.Store(&list)
	return r
}

// UDPHeldBack returns how many datagrams the UDP sockets' readers dropped
// unparsed because their source took more than half of a saturated reader.
func (e *Engine) UDPHeldBack() uint64 {
	var n uint64
	if l := e.shares.Load(); l != nil {
		for _, r := range *l {
			n += r.held.Load()
		}
	}
	return n
}

// trustedSource reports whether src is in [server] trusted_sources, or
// is an address of a destination of a [[set]] (source.set): a gateway or
// trunk the config sends calls to may well be the proxy's busiest source.
func (e *Engine) trustedSource(src netip.Addr) bool {
	p := e.current.Load()
	if p == nil || p.Config == nil {
		return false
	}
	for _, n := range p.Config.Server.Trusted {
		if n.Contains(src) {
			return true
		}
	}
	return p.SourceSet(src) != ""
}
