package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestWebSocketListen runs the binary with -listen ws://…/sip and a
// [websocket] section: a browser-like client with the sip subprotocol
// registers over it and gets 200; a handshake for another path gets 404
// and one from another Origin 403.
func TestWebSocketListen(t *testing.T) {
	addr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	cfg := strings.Replace(testConfig(), "[log]", "[websocket]\norigins = [\"https://phone.sip.test\"]\n\n[log]", 1)
	startProxy(t, cfg, fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP)), "ws://"+addr+"/sip")

	d := ws.Dialer{Protocols: []string{"sip"}, Timeout: 5 * time.Second,
		Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {"https://phone.sip.test"}})}
	conn, _, hs, err := d.Dial(t.Context(), "ws://"+addr+"/sip")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if hs.Protocol != "sip" {
		t.Errorf("subprotocol %q, want sip", hs.Protocol)
	}
	register := "REGISTER sip:" + proxyDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-ws-e2e\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:alice@" + proxyDomain + ">;tag=ws1\r\n" +
		"To: <sip:alice@" + proxyDomain + ">\r\n" +
		"Call-ID: ws-e2e\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>\r\n" +
		"Expires: 300\r\n" +
		"Content-Length: 0\r\n\r\n"
	if err := wsutil.WriteClientText(conn, []byte(register)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := wsutil.ReadServerText(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(res), "SIP/2.0 200") {
		t.Errorf("REGISTER over WebSocket answered:\n%s", res)
	}

	for _, tc := range []struct {
		path, origin string
		status       int
	}{
		{"/other", "https://phone.sip.test", http.StatusNotFound},
		{"/sip", "https://evil.test", http.StatusForbidden},
	} {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\nOrigin: "+tc.origin+"\r\n\r\n")
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || r.StatusCode != tc.status {
			t.Errorf("handshake for %s from %s: %v, %v; want %d", tc.path, tc.origin, r, err, tc.status)
		}
	}
}
