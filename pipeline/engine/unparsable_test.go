package engine

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// fakePacketConn is a socket that only has an address.
type fakePacketConn struct {
	net.PacketConn
	local net.Addr
}

func (c fakePacketConn) LocalAddr() net.Addr { return c.local }

// TestDelivered checks which notes a message sipgo delivered clears: the
// one of its source, unless two sockets wait on that source.
func TestDelivered(t *testing.T) {
	udp := func(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netipAddrPort(t, s)) }
	sock1, sock2 := udp("127.0.0.1:5060"), udp("127.0.0.1:5062")
	alice, bob := udp("192.0.2.1:5060"), udp("192.0.2.2:5060")
	invite := []byte("INVITE sip:a@example.com SIP/2.0\r\n\r\n")
	tests := []struct {
		what      string
		from      []*net.UDPAddr // the sources of the sockets' datagrams, nil for none
		data      []byte
		transport string
		source    string
		want      []bool // whether each socket's note still stands
	}{
		{"its source", []*net.UDPAddr{alice, nil}, invite, "UDP", "192.0.2.1:5060", []bool{false, false}},
		{"another source", []*net.UDPAddr{alice, nil}, invite, "UDP", "192.0.2.2:5060", []bool{true, false}},
		{"the socket whose source it is", []*net.UDPAddr{alice, bob}, invite, "UDP", "192.0.2.2:5060", []bool{true, false}},
		{"two sockets, one source", []*net.UDPAddr{alice, alice}, invite, "UDP", "192.0.2.1:5060", []bool{true, true}},
		{"over TCP", []*net.UDPAddr{alice, nil}, invite, "TCP", "192.0.2.1:5060", []bool{true, false}},
		{"a keep-alive is not noted", []*net.UDPAddr{alice, nil}, []byte("\r\n\r\n"), "UDP", "192.0.2.2:5060", []bool{false, false}},
	}
	for i, tc := range tests {
		e := &Engine{}
		watches := []*parseWatch{
			e.watchParses(fakePacketConn{local: sock1}).(*parseWatch),
			e.watchParses(fakePacketConn{local: sock2}).(*parseWatch),
		}
		for j, from := range tc.from {
			if from != nil {
				e.sawDatagram(watches[j].local, from, tc.data)
			}
		}
		msg := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "example.com"})
		msg.SetTransport(tc.transport)
		msg.SetSource(tc.source)
		e.delivered(msg)
		for j, w := range watches {
			if got := w.from.Load() != nil; got != tc.want[j] {
				t.Errorf("test %d (%s): socket %d noted %v, want %v", i, tc.what, j+1, got, tc.want[j])
			}
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
	return testEngineWith(t, maxSize, Options{})
}

// testEngineWith is testEngine with the given options, which New applies
// before the engine's sockets are read: a test changes sipgo's timers
// through them, not after Listen, when the engine's goroutines read them.
func testEngineWith(t testing.TB, maxSize int, opts Options) *Engine {
	t.Helper()
	return testEngineLogged(t, maxSize, opts, slog.New(slog.DiscardHandler))
}

// testEngineLogged is testEngineWith logging to log.
func testEngineLogged(t testing.TB, maxSize int, opts Options, log *slog.Logger) *Engine {
	t.Helper()
	e, err := New(&pipeline.Services{}, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	var listens []config.Listen
	uris := []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	if opts.Certs != nil {
		uris = append(uris, "tls://127.0.0.1:0?advertise="+tlsName)
	}
	for _, l := range uris {
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
	// The engine's log, shown if the test fails (why a message went
	// unanswered is logged at debug level); a cleanup registered before
	// the engine's, it runs after the engine stopped.
	var logs stagetest.Logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the engine's log:\n%s", logs.String())
		}
	})
	e := testEngineLogged(t, 4000, Options{}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
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

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}
