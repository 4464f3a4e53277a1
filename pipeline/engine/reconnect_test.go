package engine

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/guard"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestMarkReceived(t *testing.T) {
	tests := []struct {
		via, src string
		want     string // received afterwards, "" for none
	}{
		{"SIP/2.0/TCP attacker.example:5060;branch=z9hG4bK1", "192.0.2.7", "192.0.2.7"},
		{"SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bK1", "192.0.2.7", "192.0.2.7"},
		{"SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK1", "192.0.2.7", ""},
		{"SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK1;received=198.51.100.1", "192.0.2.7", "192.0.2.7"},
		{"SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1", "2001:db8::1", ""},
		{"SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1", "2001:db8::2", "2001:db8::2"},
	}
	for i, tc := range tests {
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "example.org"})
		req.AppendHeader(sip.NewHeader("Via", tc.via))
		msg, err := sip.ParseMessage([]byte(req.String()))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		req = msg.(*sip.Request)
		markReceived(req, netip.MustParseAddr(tc.src))
		got, _ := req.Via().Params.Get("received")
		if got != tc.want {
			t.Errorf("test %d: received %q, want %q (Via %s)", i, got, tc.want, req.Via().Value())
		}
	}
}

// answers counts the connections the proxy opens to the Via ports of a
// sender (listen), each read until the proxy closes it.
type answers struct {
	mu                   sync.Mutex
	accepted, open, peak int
}

// listen opens a port a sender names in its Via.
func (a *answers) listen(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.accepted++
			a.open++
			a.peak = max(a.peak, a.open)
			a.mu.Unlock()
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(io.Discard, c)
				a.mu.Lock()
				a.open--
				a.mu.Unlock()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func (a *answers) counts() (accepted, open, peak int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.accepted, a.open, a.peak
}

// tcpSocket returns the address of the engine's TCP socket.
func tcpSocket(t *testing.T, e *Engine) netip.AddrPort {
	t.Helper()
	for _, s := range e.Sockets() {
		if s.Transport == "TCP" {
			return s.Addr
		}
	}
	t.Fatal("no TCP socket")
	return netip.AddrPort{}
}

// TestConnectionsOpenedToAnswer is the attack of a sender that closes its
// connection as soon as it sent a request, naming a new Via port each
// time: each answer makes the proxy open a connection, which must be
// capped and closed. The callee answers only once the proxy has closed
// the senders' connections: an answer written before that would still go
// over the sender's half-closed connection.
func TestConnectionsOpenedToAnswer(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := forwardingEngine(t, "", "")
	const perDestination = 2
	e.guard.SetLimits(guard.Limits{MaxConnections: 100, MaxPerSource: perDestination, IdleTimeout: idle})
	e.Start()
	proxy := tcpSocket(t, e)
	answer := make(chan struct{})
	callee := newPhone(t, "callee", func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		select {
		case <-answer:
		case <-time.After(coreWait):
		}
		ph.reply(req, from, 200)
	})
	var a answers
	for i := range 5 {
		port := a.listen(t)
		c, err := net.Dial("tcp4", proxy.String())
		if err != nil {
			t.Fatal(err)
		}
		n := strconv.Itoa(i)
		msg := "OPTIONS sip:callee@" + callee.addr() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/TCP 127.0.0.1:" + strconv.Itoa(port) + ";branch=z9hG4bKreconnect" + n + "\r\n" +
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: reconnect" + n + "\r\n" +
			"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Past the per-source cap, some connections are refused unread; the
	// requests read wait for the callee until their connections closed.
	poll(t, "requests read and their connections closed", func() bool { return e.InFlight() > 0 && e.guard.Open() == 0 })
	close(answer)
	deadline := time.Now().Add(5 * time.Second)
	for {
		accepted, open, peak := a.counts()
		if peak > perDestination {
			t.Fatalf("%d connections open to one address at once, want at most %d", peak, perDestination)
		}
		if accepted > 0 && open == 0 && e.guard.Outbound() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections opened to answer, %d still open after 5s; want them closed %v after the last data", accepted, open, idle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReconnect checks the connection a response is resent over when the
// request's is gone: of the request's transport whatever the Via says, to
// the received address at the Via's port, and closed once written.
func TestReconnect(t *testing.T) {
	e := testEngine(t, 65535)
	for i, transport := range []string{"TCP", "TLS", "UDP", "WS"} {
		var a answers
		port := a.listen(t)
		res := sip.NewResponse(200, "OK")
		res.AppendHeader(sip.NewHeader("Via", "SIP/2.0/"+transport+" attacker.example:"+strconv.Itoa(port)+";branch=z9hG4bK1;received=127.0.0.1"))
		msg, err := sip.ParseMessage([]byte(res.String()))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.reconnect(msg.(*sip.Response), "TCP"); err != nil {
			t.Errorf("test %d: Via %s: %v", i, transport, err)
			continue
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			accepted, open, _ := a.counts()
			if accepted == 1 && open == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("test %d: Via %s: %d connections accepted over TCP, %d left open", i, transport, accepted, open)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
