package engine

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// scriptedSocket hands out datagrams from a script: each comes from src
// after the socket was idle for idle, and takes the reader cost once
// returned.
type scriptedSocket struct {
	net.PacketConn
	clock *time.Time
	queue []scripted
	last  scripted // the datagram last read
}

type scripted struct {
	src        string
	idle, cost time.Duration
}

func (s *scriptedSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(s.queue) == 0 {
		return 0, nil, io.EOF
	}
	s.last, s.queue = s.queue[0], s.queue[1:]
	*s.clock = s.clock.Add(s.last.idle)
	return 1, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s.last.src)), nil
}

// repeat returns n datagrams from src, each idle and cost.
func repeat(n int, src string, idle, cost time.Duration) []scripted {
	out := make([]scripted, n)
	for i := range out {
		out[i] = scripted{src, idle, cost}
	}
	return out
}

// interleave returns the datagrams of a and b in turn, every nth of a
// followed by one of b.
func interleave(a, b []scripted, nth int) []scripted {
	var out []scripted
	for i, d := range a {
		out = append(out, d)
		if (i+1)%nth == 0 && len(b) > 0 {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(out, b...)
}

// TestReaderShare: a source that takes more than half of a saturated
// reader, while another source sends too or sent within a second, is held
// back; a source alone, a fair share, and a reader that keeps up are left
// alone.
func TestReaderShare(t *testing.T) {
	const (
		attacker = "192.0.2.66:5060"
		phone    = "192.0.2.10:5060"
	)
	ms := time.Millisecond
	tests := []struct {
		what   string
		script []scripted
		// the datagrams of the attacker and the phone returned, at most
		// and at least
		maxAttacker, minPhone int
	}{
		{"alone, saturated", repeat(200, attacker, 0, 10*ms), 200, 0},
		{"most of a saturated reader", interleave(repeat(400, attacker, ms, 10*ms), repeat(80, phone, 0, ms/10), 5), 400 / 3, 80},
		// The phone's datagram waits in the socket's queue: it sent a
		// moment ago, not since.
		{"most of a saturated reader, the other source quiet", append([]scripted{{phone, 0, ms / 10}}, repeat(600, attacker, 2*ms, 10*ms)...), 200, 1},
		{"half each", interleave(repeat(100, attacker, 0, 10*ms), repeat(100, phone, 0, 10*ms), 1), 100, 100},
		{"a reader that keeps up", interleave(repeat(200, attacker, 3*ms, 6*ms), repeat(40, phone, 0, ms/10), 5), 200, 40},
	}
	for i, tc := range tests {
		clock := time.Unix(1000, 0)
		sock := &scriptedSocket{clock: &clock, queue: tc.script}
		r := newReaderShare(sock, slog.New(slog.DiscardHandler))
		r.now = func() time.Time { return clock }
		got := map[string]int{}
		for {
			_, addr, err := r.ReadFrom(nil)
			if err != nil {
				break
			}
			got[addr.String()]++
			clock = clock.Add(sock.last.cost)
		}
		if got[attacker] > tc.maxAttacker || got[phone] < tc.minPhone {
			t.Errorf("test %d (%s): %d of the attacker's datagrams and %d of the phone's read, want at most %d and at least %d",
				i, tc.what, got[attacker], got[phone], tc.maxAttacker, tc.minPhone)
		}
	}
}

// TestReaderShareBounded: the sources weighed in a period are bounded.
func TestReaderShareBounded(t *testing.T) {
	clock := time.Unix(1000, 0)
	var script []scripted
	for i := range shareMaxTracked + 100 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5060)
		script = append(script, scripted{ap.String(), 0, time.Microsecond})
	}
	sock := &scriptedSocket{clock: &clock, queue: script}
	r := newReaderShare(sock, slog.New(slog.DiscardHandler))
	r.now = func() time.Time { return clock }
	for {
		if _, _, err := r.ReadFrom(nil); err != nil {
			break
		}
		clock = clock.Add(sock.last.cost)
	}
	if n := len(r.used); n > shareMaxTracked {
		t.Errorf("%d sources weighed, want at most %d", n, shareMaxTracked)
	}
}

// BenchmarkReaderShare measures what readerShare adds to a read: two
// readings of the clock and a map update.
func BenchmarkReaderShare(b *testing.B) {
	r := newReaderShare(fixedSocket{from: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5060}}, slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.ReadFrom(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// fixedSocket reads a datagram from the same source, at once, forever.
type fixedSocket struct {
	net.PacketConn
	from *net.UDPAddr
}

func (s fixedSocket) ReadFrom([]byte) (int, net.Addr, error) { return 1, s.from, nil }
