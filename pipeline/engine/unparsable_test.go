package engine

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

func TestFindWatch(t *testing.T) {
	e1, e2 := &Engine{}, &Engine{}
	udp := func(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netipAddrPort(t, s)) }
	sock1, sock2, sock3 := udp("127.0.0.1:5060"), udp("127.0.0.1:5062"), udp("127.0.0.1:5064")
	alice, bob := udp("192.0.2.1:5060"), udp("192.0.2.2:5060")
	garbage := "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;;,,\r\n\r\n"
	other := garbage[:10] + "X" + garbage[11:] // differs only outside the words fingerprint reads
	tests := []struct {
		what  string
		saw   []*datagramWatch // the sockets' last datagrams (print set from data below)
		data  []string
		from  []*net.UDPAddr
		find  string
		want  *net.UDPAddr // the local socket found, nil for none
		wantF *net.UDPAddr
	}{
		{"one socket", nil, []string{garbage}, []*net.UDPAddr{alice}, garbage, sock1, alice},
		{"another datagram", nil, []string{"OPTIONS"}, []*net.UDPAddr{alice}, garbage, nil, nil},
		{"second socket", nil, []string{"OPTIONS", garbage}, []*net.UDPAddr{alice, bob}, garbage, sock2, bob},
		{"same datagram, same source", nil, []string{garbage, garbage}, []*net.UDPAddr{alice, alice}, garbage, sock1, alice},
		{"same datagram, two sources", nil, []string{garbage, garbage}, []*net.UDPAddr{alice, bob}, garbage, nil, nil},
		{"same length and words", nil, []string{garbage}, []*net.UDPAddr{alice}, other, sock1, alice},
	}
	for i, tc := range tests {
		watches.list.Store(nil)
		socks := []*net.UDPAddr{sock1, sock2, sock3}
		for j, d := range tc.data {
			e := e1
			if j == 1 {
				e = e2
			}
			e.sawDatagram(socks[j], tc.from[j], []byte(d))
		}
		w, from := findWatch([]byte(tc.find))
		switch {
		case tc.want == nil && w != nil:
			t.Errorf("test %d (%s): found %s, want none", i, tc.what, w.local)
		case tc.want != nil && (w == nil || w.local != tc.want || from != tc.wantF):
			t.Errorf("test %d (%s): found %v from %v, want %s from %s", i, tc.what, w, from, tc.want, tc.wantF)
		}
	}
	watches.list.Store(nil)
}

func TestWatchBounded(t *testing.T) {
	watches.list.Store(nil)
	defer watches.list.Store(nil)
	e := &Engine{}
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060}
	var first *net.UDPAddr
	for i := range maxWatches + 10 {
		local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6000 + i}
		if i == 0 {
			first = local
		}
		e.sawDatagram(local, from, []byte("x"+strconv.Itoa(i)))
	}
	l := *watches.list.Load()
	if len(l) != maxWatches {
		t.Errorf("%d sockets watched, want %d", len(l), maxWatches)
	}
	for _, w := range l {
		if w.local == first {
			t.Errorf("the oldest socket is still watched")
		}
	}
}

func netipAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// testEngine runs an engine on loopback (UDP and TCP, ports picked by the
// kernel) with a pipeline of no stages whose config has maxSize as
// [server] max_message_size.
func testEngine(t *testing.T, maxSize int) *Engine {
	t.Helper()
	e, err := New(&pipeline.Services{}, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var listens []config.Listen
	for _, l := range []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"} {
		ll, err := config.ParseListen(l)
		if err != nil {
			t.Fatal(err)
		}
		listens = append(listens, ll)
	}
	if err := e.Listen(listens); err != nil {
		t.Fatal(err)
	}
	cfg := &config.File{}
	cfg.Defaults()
	cfg.Server.MaxMessageSize = maxSize
	e.current.Store(&pipeline.Pipeline{Config: cfg})
	t.Cleanup(func() {
		e.forgetWatches()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *Engine) testAddr(transport string) string {
	for _, s := range e.Sockets() {
		if s.Transport == transport {
			return s.Addr.String()
		}
	}
	return ""
}

// TestEngineAnswersUnparsable sends the engine what sipgo cannot parse, or
// must not (too large), over UDP, and checks the answers: status line and
// the Via sent back.
func TestEngineAnswersUnparsable(t *testing.T) {
	e := testEngine(t, 4000)
	big := string(torture(t, "lwsdisp.dat"))
	big = strings.Replace(big, "l: 0", "X-Padding: "+strings.Repeat("p", 5000)+"\r\nl: 0", 1)
	tests := []struct {
		what, data string
		status     string // "" for no answer
		via        string
	}{
		{"badinv01.dat", string(torture(t, "badinv01.dat")), "SIP/2.0 400 Bad Request: malformed Via", "SIP/2.0/UDP 192.0.2.15;;,;,,"},
		{"ltgtruri.dat (and no branch)", string(torture(t, "ltgtruri.dat")), "SIP/2.0 400 Bad Request: malformed Request-URI", "SIP/2.0/UDP 192.0.2.5"},
		{"novelsc.dat", string(torture(t, "novelsc.dat")), "SIP/2.0 416 Unsupported URI Scheme", "SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234"},
		{"clerr.dat", string(torture(t, "clerr.dat")), "SIP/2.0 400 Bad Request: Content-Length larger than the message", "SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523"},
		{"scalarlg.dat (a response)", string(torture(t, "scalarlg.dat")), "", ""},
		{"test.dat (no Via)", string(torture(t, "test.dat")), "", ""},
		{"an ACK", "ACK <sip:a@example.com> SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK1\r\nCSeq: 1 ACK\r\n\r\n", "", ""},
		{"too large", big, "SIP/2.0 513 Message Too Large: " + strconv.Itoa(len(big)) + " bytes, at most 4000", "SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw"},
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst, _ := net.ResolveUDPAddr("udp4", e.testAddr("UDP"))
	buf := make([]byte, 65535)
	for i, tc := range tests {
		if _, err := pc.WriteTo([]byte(tc.data), dst); err != nil {
			t.Fatal(err)
		}
		wait := 2 * time.Second
		if tc.status == "" {
			wait = 300 * time.Millisecond
		}
		_ = pc.SetReadDeadline(time.Now().Add(wait))
		n, _, err := pc.ReadFrom(buf)
		if tc.status == "" {
			if err == nil {
				t.Errorf("test %d (%s): answered %q, want no answer", i, tc.what, firstLine(buf[:n]))
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d (%s): no answer, want %q", i, tc.what, tc.status)
			continue
		}
		res := string(buf[:n])
		if got := firstLine(buf[:n]); got != tc.status {
			t.Errorf("test %d (%s): %q, want %q", i, tc.what, got, tc.status)
		}
		if !strings.Contains(res, "\r\nVia: "+tc.via+"\r\n") {
			t.Errorf("test %d (%s): want Via: %s in\n%s", i, tc.what, tc.via, res)
		}
	}
}

// TestEngineUnparsableRace sends garbage from several sources to two UDP
// sockets at once, for the race detector, and checks each answer went to
// the source of its own datagram.
func TestEngineUnparsableRace(t *testing.T) {
	e := testEngine(t, sip.ParseMaxMessageLength)
	dst, _ := net.ResolveUDPAddr("udp4", e.testAddr("UDP"))
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Error(err)
				return
			}
			defer pc.Close()
			callID := "race-" + strconv.Itoa(c)
			msg := "INVITE <sip:a@example.com> SIP/2.0\r\nVia: SIP/2.0/UDP " + pc.LocalAddr().String() + ";branch=z9hG4bK" + callID + "\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n\r\n"
			buf := make([]byte, 65535)
			for range 5 {
				if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
					t.Error(err)
					return
				}
				_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					t.Errorf("%s: no answer", callID)
					return
				}
				if !strings.Contains(string(buf[:n]), "Call-ID: "+callID+"\r\n") {
					t.Errorf("%s: got the answer to another request:\n%s", callID, buf[:n])
				}
			}
		}()
	}
	wg.Wait()
}

// forgetWatches stops watching the sockets of e.
func (e *Engine) forgetWatches() {
	watches.mu.Lock()
	defer watches.mu.Unlock()
	if l := watches.list.Load(); l != nil {
		list := slices.DeleteFunc(slices.Clone(*l), func(w *datagramWatch) bool { return w.e == e })
		watches.list.Store(&list)
	}
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}
