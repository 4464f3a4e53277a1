package engine

import (
	"bufio"
	"cmp"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// The WebSocket tests run the proxy with a ws:// listener for /sip, and a
// browser-like phone on it (wsPhone): Contact and Via on a .invalid host,
// reachable only over its connection (RFC 7118).

// wsSections are the config sections of the WebSocket tests: one allowed
// Origin, and messages of at most 4096 bytes.
const wsSections = "max_message_size = 4096\n[websocket]\norigins = [\"https://phone.example.org\"]\n"

// newWSCore runs the product's chain with a ws:// listener for /sip; it
// returns the core and the listener's address.
func newWSCore(t *testing.T) (*core, string) {
	t.Helper()
	c := newCoreOn(t, wsSections, productChain, Options{}, "ws://127.0.0.1:0/sip")
	return c, c.e.testAddr("WS")
}

// wsPhone is a browser phone: a WebSocket client with the sip
// subprotocol. It keeps every text frame it reads, answers pings unless
// told not to, and answers requests 200 (an ACK, nothing).
type wsPhone struct {
	t         *testing.T
	name      string
	conn      net.Conn
	host      string // its .invalid host
	transport string // "WS", "WSS", or "TCP" (tcpPhone: no frames)

	mu    sync.Mutex
	texts []string
	pings int
	mute  bool // pings go unanswered
	// hangUp, when set, makes a request close the connection, after an
	// answer with that code, or unanswered for -1.
	hangUp int
	// code, when set, answers requests in place of 200, after delay.
	code   int
	delay  time.Duration
	closed chan struct{}
	wmu    sync.Mutex
}

// dialWS connects a wsPhone named name to the proxy's ws listener.
func dialWS(t *testing.T, addr, name string) *wsPhone {
	t.Helper()
	return dialWebSocket(t, "ws://"+addr+"/sip", name, nil)
}

// wsDialer is a browser's dialer: the sip subprotocol, the allowed
// Origin, TLS with config for a wss:// URL.
func wsDialer(config *tls.Config) ws.Dialer {
	return ws.Dialer{NetDial: reuseDialer.DialContext, Protocols: []string{"sip"}, Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {"https://phone.example.org"}}), TLSConfig: config}
}

// dialWebSocket connects a wsPhone named name to url, ws:// or wss://
// (trusting what config trusts).
func dialWebSocket(t *testing.T, url, name string, config *tls.Config) *wsPhone {
	t.Helper()
	d := wsDialer(config)
	conn, _, hs, err := d.Dial(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Protocol != "sip" {
		t.Fatalf("handshake chose subprotocol %q, want sip", hs.Protocol)
	}
	transport := "WS"
	if strings.HasPrefix(url, "wss:") {
		transport = "WSS"
	}
	p := &wsPhone{t: t, name: name, conn: conn, host: name + "-df7jal23ls0d.invalid", transport: transport, closed: make(chan struct{})}
	t.Cleanup(func() { conn.Close(); <-p.closed })
	go p.read()
	return p
}

func (p *wsPhone) read() {
	defer close(p.closed)
	if p.transport == "TCP" {
		p.readTCP()
		return
	}
	for {
		h, err := ws.ReadHeader(p.conn)
		if err != nil {
			return
		}
		body := make([]byte, h.Length)
		if _, err := io.ReadFull(p.conn, body); err != nil {
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			p.mu.Lock()
			p.pings++
			mute := p.mute
			p.mu.Unlock()
			if !mute {
				p.write(ws.OpPong, body)
			}
		case ws.OpText:
			p.received(body)
		}
	}
}

// received keeps a message read and answers a request 200.
func (p *wsPhone) received(body []byte) {
	p.mu.Lock()
	p.texts = append(p.texts, string(body))
	hangUp := p.hangUp
	p.mu.Unlock()
	if req, err := sip.ParseMessage(body); err == nil {
		if r, ok := req.(*sip.Request); ok && hangUp != 0 {
			if hangUp > 0 {
				p.reply(r, hangUp)
			}
			_ = p.conn.Close()
			return
		}
		if r, ok := req.(*sip.Request); ok && !r.IsAck() {
			p.mu.Lock()
			code, delay := cmp.Or(p.code, 200), p.delay
			p.mu.Unlock()
			if code < 0 {
				return
			}
			if delay == 0 {
				p.reply(r, code)
				return
			}
			time.AfterFunc(delay, func() { p.reply(r, code) })
		}
	}
}

func (p *wsPhone) write(op ws.OpCode, b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.transport == "TCP" {
		_, _ = p.conn.Write(b)
		return
	}
	_ = wsutil.WriteClientMessage(p.conn, op, b)
}

func (p *wsPhone) send(msg sip.Message) { p.write(ws.OpText, []byte(msg.String())) }

func (p *wsPhone) reply(req *sip.Request, code int) {
	res := sip.NewResponseFromRequest(req, code, reasonOf(code), nil)
	if to := res.To(); to != nil && !inDialog(req) {
		to.Params.Add("tag", "tag-"+p.name)
	}
	p.send(res)
}

// contact is the phone's Contact URI.
func (p *wsPhone) contact() string {
	return "sip:" + p.name + "@" + p.host + ";transport=" + strings.ToLower(p.transport)
}

// build makes a request from the phone, as build does for a UDP phone.
func (p *wsPhone) build(method sip.RequestMethod, ruri, to, callID string, extra ...string) *sip.Request {
	p.t.Helper()
	raw := fmt.Sprintf("%s %s SIP/2.0\n"+
		"Via: SIP/2.0/%s %s;branch=%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:%s@example.org>;tag=%s\n"+
		"To: <%s>\n"+
		"Call-ID: %s\n"+
		"CSeq: 1 %s\n"+
		"Contact: <%s>\n", method, ruri, p.transport, p.host, sip.GenerateBranch(), p.name, callID, to, callID, method, p.contact())
	for _, h := range extra {
		raw += h + "\n"
	}
	return stagetest.Request(p.t, raw)
}

// wait returns the first text frame that holds all of parts.
func (p *wsPhone) wait(what string, parts ...string) string {
	p.t.Helper()
	var got string
	poll(p.t, p.name+": "+what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.texts {
			ok := true
			for _, part := range parts {
				ok = ok && strings.Contains(s, part)
			}
			if ok {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// isClosed reports whether the proxy closed the phone's connection.
func (p *wsPhone) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// callBob registers the phone, then calls bob, a UDP phone that answers,
// through the proxy; it returns the INVITE bob got, after checking its two
// Record-Route entries (RFC 5658).
func (p *wsPhone) callBob(bob *phone, callID string) *sip.Request {
	p.t.Helper()
	p.send(p.build(sip.REGISTER, "sip:example.org", "sip:"+p.name+"@example.org", callID+"-reg", "Expires: 300"))
	p.wait("200 to the REGISTER", "SIP/2.0 200", "CSeq: 1 REGISTER")
	p.send(p.build(sip.INVITE, "sip:bob@example.org", "sip:bob@example.org", callID))
	inv, _ := bob.waitRequest(sip.INVITE, callID, 1)
	var routes []string
	for _, h := range inv.GetHeaders("Record-Route") {
		routes = append(routes, h.Value())
	}
	want := "transport=" + strings.ToLower(p.transport)
	if len(routes) != 2 || !strings.Contains(routes[0], "transport=udp") || !strings.Contains(routes[1], want+";") {
		p.t.Errorf("Record-Route %q, want one for UDP above one with %s (RFC 5658)", routes, want)
	}
	p.wait("200 to the INVITE", "SIP/2.0 200", "CSeq: 1 INVITE")
	return inv
}

// TestWebSocketHandshakes sends the proxy's ws listener handshakes it
// refuses, each answered and closed, then one it takes.
func TestWebSocketHandshakes(t *testing.T) {
	_, addr := newWSCore(t)
	head := "Host: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	tests := []struct {
		request string
		status  int
	}{
		{"GET /other HTTP/1.1\r\n" + head + "Sec-WebSocket-Protocol: sip\r\n\r\n", http.StatusNotFound},
		{"GET /sip HTTP/1.1\r\n" + head + "Origin: https://evil.example\r\nSec-WebSocket-Protocol: sip\r\n\r\n", http.StatusForbidden},
		{"GET /sip HTTP/1.1\r\nHost: " + addr + "\r\n\r\n", http.StatusUpgradeRequired},
		{"GET /sip HTTP/1.1\r\n" + head + "Sec-WebSocket-Protocol: chat\r\n\r\n", http.StatusBadRequest},
		{"GET /sip HTTP/1.1\r\n" + head + "\r\n", http.StatusBadRequest},
		{"GET /sip HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n", http.StatusBadRequest}, // no key: sipgo's upgrader answers
		{"GET /sip HTTP/1.1\r\n" + head + "Origin: https://phone.example.org\r\nSec-WebSocket-Protocol: sip\r\n\r\n", http.StatusSwitchingProtocols},
	}
	for i, tc := range tests {
		conn, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(coreWait))
		if _, err := io.WriteString(conn, tc.request); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("test %d: no answer: %v", i, err)
			conn.Close()
			continue
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("test %d: status %d, want %d", i, res.StatusCode, tc.status)
		}
		if tc.status != http.StatusSwitchingProtocols {
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Errorf("test %d: still open after the refusal", i)
			}
		} else if p := res.Header.Get("Sec-WebSocket-Protocol"); p != "sip" {
			t.Errorf("test %d: subprotocol %q, want sip", i, p)
		}
		conn.Close()
	}
}

// TestWebSocketLimits sends a CRLF keepalive in a frame (answered with a
// CRLF), a message over max_message_size (513), and a frame over the
// largest SIP message: the connection is closed, and forgotten.
func TestWebSocketLimits(t *testing.T) {
	c, addr := newWSCore(t)
	p := dialWS(t, addr, "alice")
	p.write(ws.OpText, []byte("\r\n\r\n"))
	if pong := p.wait("the keepalive's pong", "\r\n"); pong != "\r\n" {
		t.Errorf("keepalive answered %q, want a CRLF", pong)
	}

	big := p.build(sip.MESSAGE, "sip:bob@example.org", "sip:bob@example.org", "ws-big", "Content-Type: text/plain")
	big.SetBody([]byte(strings.Repeat("x", 5000)))
	p.send(big)
	p.wait("513 to the large MESSAGE", "SIP/2.0 513", "ws-big")
	if p.isClosed() {
		t.Fatal("the 513 closed the connection")
	}

	p.write(ws.OpText, make([]byte, sip.ParseMaxMessageLength+1))
	poll(t, "the close of a connection that sent a frame too large", p.isClosed)
	poll(t, "the connection released", func() bool { return c.e.guard.Open() == 0 })
	if conn, err := c.e.tp.GetConnection("ws", p.conn.LocalAddr().String()); err == nil && conn != nil {
		t.Error("sipgo still holds the closed connection")
	}
	c.idle(t)
}

// TestWebSocketPing has two phones on a proxy that pings often: the one
// that answers stays, the one that stops answering is closed.
func TestWebSocketPing(t *testing.T) {
	c, addr := newWSCore(t)
	cfg := *c.e.Pipeline().Config
	cfg.WebSocket.PingInterval = config.Duration(200 * time.Millisecond) // below what a config file allows
	p, err := pipeline.Build(&cfg, c.e.svc)
	if err != nil {
		t.Fatal(err)
	}
	c.e.Use(p)
	talking, mute := dialWS(t, addr, "alice"), dialWS(t, addr, "bob")
	mute.mu.Lock()
	mute.mute = true
	mute.mu.Unlock()
	poll(t, "the close of a phone that does not answer pings", mute.isClosed)
	poll(t, "pings to the phone that answers", func() bool {
		talking.mu.Lock()
		defer talking.mu.Unlock()
		return talking.pings >= 3
	})
	if talking.isClosed() {
		t.Error("the phone that answers pings was closed")
	}
	mute.mu.Lock()
	defer mute.mu.Unlock()
	if mute.pings == 0 {
		t.Error("the closed phone was never pinged")
	}
}
