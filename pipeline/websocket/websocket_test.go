package websocket

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// handshake is a browser's opening handshake for the path, with the
// header lines extra.
func handshake(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		strings.Join(extra, "") + "\r\n"
}

// gated listens on loopback behind a Gate for path with settings s.
func gated(t *testing.T, path string, s Settings) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.HandshakeTimeout == 0 {
		s.HandshakeTimeout = 2 * time.Second
	}
	if s.PingInterval == 0 {
		s.PingInterval = time.Hour
	}
	g := &Gate{Path: path, Settings: func() Settings { return s }, Log: slog.New(slog.DiscardHandler)}
	gl := g.Listen(ln)
	t.Cleanup(func() { gl.Close() })
	return gl
}

func dial(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// TestHandshake sends handshakes to a gate for /sip that allows one
// Origin: each is refused with its status and closed, or handed over
// with its request intact.
func TestHandshake(t *testing.T) {
	sip := "Sec-WebSocket-Protocol: sip\r\n"
	tests := []struct {
		path    string // the gate's path
		request string
		status  int // 0: handed over
	}{
		{"/sip", handshake("/sip", sip), 0},
		{"/sip", handshake("/sip?user=alice", "Origin: https://phone.example.com\r\n", sip), 0},
		{"/sip", handshake("/sip", "Sec-WebSocket-Protocol: chat, SIP\r\n"), 0},
		{"", handshake("/anything", sip), 0},
		{"/sip", handshake("/other", sip), http.StatusNotFound},
		{"/sip", handshake("/sip", "Origin: https://evil.example\r\n", sip), http.StatusForbidden},
		{"/sip", handshake("/sip"), http.StatusBadRequest},
		{"/sip", handshake("/sip", "Sec-WebSocket-Protocol: chat\r\n"), http.StatusBadRequest},
		{"/sip", "GET /sip HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", http.StatusUpgradeRequired},
		{"/sip", "POST /sip HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", http.StatusBadRequest},
		{"/sip", "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS x.invalid\r\n\r\n", http.StatusBadRequest},
		{"/sip", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", http.StatusBadRequest},
		{"/sip", handshake("/sip", sip, "Cookie: "+strings.Repeat("x", MaxHandshake)+"\r\n"), http.StatusRequestHeaderFieldsTooLarge},
	}
	for i, tc := range tests {
		ln := gated(t, tc.path, Settings{Origins: []string{"https://phone.example.com"}})
		c := dial(t, ln)
		if _, err := io.WriteString(c, tc.request); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if tc.status != 0 {
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("test %d: no HTTP answer: %v", i, err)
				continue
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("test %d: status %d, want %d", i, res.StatusCode, tc.status)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("test %d: the connection is not closed after the refusal: %v", i, err)
			}
			continue
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		got := make([]byte, len(tc.request))
		if _, err := io.ReadFull(sc, got); err != nil || string(got) != tc.request {
			t.Errorf("test %d: replayed %q, %v; want the request", i, got, err)
		}
		sc.Close()
	}
}

// TestHandshakeTimeout is a client that sends half a handshake and waits:
// it is closed, and one behind it is served meanwhile.
func TestHandshakeTimeout(t *testing.T) {
	ln := gated(t, "/sip", Settings{HandshakeTimeout: 200 * time.Millisecond})
	slow := dial(t, ln)
	_, _ = io.WriteString(slow, "GET /sip HTTP/1.1\r\n")
	fast := dial(t, ln)
	_, _ = io.WriteString(fast, handshake("/sip", "Sec-WebSocket-Protocol: sip\r\n"))
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
	if _, err := slow.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a half handshake is still open: %v", err)
	}
}

// upgraded returns a connection the gate handed over, upgraded by gobwas
// as sipgo's transport does, and the client's end past the 101.
func upgraded(t *testing.T, s Settings) (server, client net.Conn) {
	t.Helper()
	ln := gated(t, "/sip", s)
	client = dial(t, ln)
	if _, err := io.WriteString(client, handshake("/sip", "Sec-WebSocket-Protocol: sip\r\n")); err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if _, err := (ws.Upgrader{}).Upgrade(server); err != nil {
		t.Fatal(err)
	}
	// sipgo's transport reads all the time: the pongs are read.
	go func() { _, _ = io.Copy(io.Discard, server) }()
	br := bufio.NewReader(client)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %v, %v", res, err)
	}
	if br.Buffered() > 0 {
		t.Fatal("frames read with the 101")
	}
	return server, client
}

// TestPing is a client that answers two pings, then stops: the proxy
// closes it about an interval after the ping it left unanswered.
func TestPing(t *testing.T) {
	_, client := upgraded(t, Settings{PingInterval: 100 * time.Millisecond})
	for range 2 {
		h, err := ws.ReadHeader(client)
		if err != nil || h.OpCode != ws.OpPing {
			t.Fatalf("read %+v, %v; want a ping", h, err)
		}
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewPongFrame(nil))); err != nil {
			t.Fatal(err)
		}
	}
	for {
		h, err := ws.ReadHeader(client)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read %v, want the close of a peer that stopped answering", err)
		}
		if h.OpCode != ws.OpPing {
			t.Fatalf("read %+v, want a ping", h)
		}
	}
}

// TestPingBetweenFrames writes frames from several goroutines, header and
// payload apart as sipgo does, while pings go out as fast as they can:
// the client reads only whole frames, the pings among them.
func TestPingBetweenFrames(t *testing.T) {
	server, client := upgraded(t, Settings{})
	const writers, each, pings = 4, 200, 300
	payload := strings.Repeat("SIP/2.0 200 OK\r\n", 20)
	var wg sync.WaitGroup
	var mu sync.Mutex // one frame at a time, as sipgo's WSConnection does
	for range writers {
		wg.Go(func() {
			for range each {
				mu.Lock()
				err := ws.WriteFrame(server, ws.NewTextFrame([]byte(payload)))
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range pings {
			server.(*conn).writePing()
		}
	})
	texts, pinged := 0, 0
	for texts < writers*each || pinged < pings {
		h, err := ws.ReadHeader(client)
		if err != nil {
			t.Fatalf("after %d frames: %v", texts+pinged, err)
		}
		body := make([]byte, h.Length)
		if _, err := io.ReadFull(client, body); err != nil {
			t.Fatal(err)
		}
		switch {
		case h.OpCode == ws.OpPing && h.Length == 0:
			pinged++
		case h.OpCode == ws.OpText && string(body) == payload:
			texts++
		default:
			t.Fatalf("after %d frames: a broken frame %+v", texts+pinged, h)
		}
	}
	wg.Wait()
}

func TestFrameHeader(t *testing.T) {
	tests := []struct {
		b          []byte
		hlen       int
		plen       int64
		incomplete bool
	}{
		{[]byte{0x81, 5}, 2, 5, false},
		{[]byte{0x89, 0}, 2, 0, false},
		{[]byte{0x81, 126, 0x01, 0x00}, 4, 256, false},
		{[]byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 10, 65536, false},
		{[]byte{0x81, 0x85, 1, 2, 3, 4}, 6, 5, false},
		{[]byte{0x81}, 0, 0, true},
		{[]byte{0x81, 126, 0x01}, 0, 0, true},
	}
	for i, tc := range tests {
		hlen, plen, ok := frameHeader(tc.b)
		if ok == tc.incomplete || (ok && (hlen != tc.hlen || plen != tc.plen)) {
			t.Errorf("test %d: frameHeader(% x) = %d, %d, %v; want %d, %d", i, tc.b, hlen, plen, ok, tc.hlen, tc.plen)
		}
	}
}
