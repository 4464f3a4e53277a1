package engine

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// A UDP socket has one reader: sipgo reads a datagram, the read filter
// runs, sipgo parses it, and only then hands it to a goroutine of its own.
// Parsing is linear in the size, but a datagram of 64 KB of Route or
// Contact values still takes milliseconds, and ratelimit counts packets,
// not their cost, in a window that may open with a burst: one source could
// keep the reader busy while every other source's datagrams wait behind.

const (
	// sharePeriod is how often readerShare weighs the sources.
	sharePeriod = 100 * time.Millisecond
	// shareHold is how long a source that took most of a saturated
	// reader is held back: it gets at most one period in six.
	shareHold = 5 * sharePeriod
	// shareCompany is how long after a period with more than one source
	// the reader counts as shared: another source's datagrams may wait in
	// the socket's queue behind those of the one that keeps it busy.
	shareCompany = time.Second
	// shareMaxTracked bounds the sources weighed in one period; the
	// others are not counted.
	shareMaxTracked = 4096
)

// readerShare is a UDP socket as sipgo's reader sees it. It measures how
// long the reader takes over each datagram (from the read that returns it
// to the next read: the read filter, with the turn it gives the goroutines
// of earlier datagrams, sipgo's parse and hand-off), adds it up per source
// address over a period. When the reader was busy for more than four
// fifths of a period, within shareCompany of a period with more than one
// source, the source that took more than half of it has its datagrams
// dropped unparsed for shareHold. A source that had the reader to itself
// for shareCompany is never held back, nor one that leaves the others half
// of it, nor any while the reader keeps up.
type readerShare struct {
	net.PacketConn
	now func() time.Time
	log *slog.Logger

	src      netip.Addr // the source of the datagram last returned, while the reader has it
	returned time.Time  // when it was returned
	start    time.Time  // the start of the period
	busy     time.Duration
	used     map[netip.Addr]time.Duration
	held     netip.Addr // the source held back, and until when
	until    time.Time
	shared   time.Time  // the end of the last period with more than one source
	reported netip.Addr // the source last logged as held back
}

func newReaderShare(c net.PacketConn, log *slog.Logger) *readerShare {
	return &readerShare{PacketConn: c, now: time.Now, log: log, used: make(map[netip.Addr]time.Duration)}
}

// ReadFrom returns the next datagram whose source is not held back.
func (r *readerShare) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		r.charge(r.now())
		n, addr, err := r.PacketConn.ReadFrom(b)
		if err != nil || addr == nil {
			return n, addr, err
		}
		now := r.now()
		src := addrPort(addr).Addr()
		if r.hold(src, now) {
			continue
		}
		r.src, r.returned = src, now
		return n, addr, nil
	}
}

// charge adds the time since the last datagram was returned to its
// source.
func (r *readerShare) charge(now time.Time) {
	if !r.src.IsValid() {
		return
	}
	d := now.Sub(r.returned)
	r.busy += d
	if _, ok := r.used[r.src]; ok || len(r.used) < shareMaxTracked {
		r.used[r.src] += d
	}
	r.src = netip.Addr{}
}

// hold reports whether a datagram from src, read at now, is to be
// dropped. When the period is over, it weighs the sources and starts the
// next one.
func (r *readerShare) hold(src netip.Addr, now time.Time) bool {
	if elapsed := now.Sub(r.start); elapsed >= sharePeriod {
		if len(r.used) > 1 {
			r.shared = now
		}
		if now.Sub(r.shared) <= shareCompany && r.busy*5 > elapsed*4 {
			for s, d := range r.used {
				if d*2 <= elapsed {
					continue
				}
				r.held, r.until = s, now.Add(shareHold)
				if s != r.reported {
					r.reported = s
					r.log.Info("udp source held back: it took most of the socket's reader", "source", s.String(),
						"share", float64(d)/float64(elapsed), "busy", float64(r.busy)/float64(elapsed))
				}
			}
		}
		if len(r.used) > 64 {
			r.used = make(map[netip.Addr]time.Duration)
		} else {
			clear(r.used)
		}
		r.busy, r.start = 0, now
	}
	return src == r.held && now.Before(r.until)
}
