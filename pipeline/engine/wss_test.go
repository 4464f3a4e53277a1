package engine

import (
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
)

// TestWSSCall is a browser phone on WebSocket over TLS: it registers over
// wss:// with the sip subprotocol, calls a UDP phone through the proxy,
// and is reached by it over its own connection. A handshake from an
// Origin not allowed is answered 403 over TLS.
func TestWSSCall(t *testing.T) {
	cb := newCertbot(t)
	c := newCoreOn(t, wsSections, productChain, Options{Certs: certStore(t, cb)}, "wss://127.0.0.1:0/sip")
	url := "wss://" + c.e.testAddr("WSS") + "/sip"
	trust := &tls.Config{RootCAs: cb.ca.Pool(), ServerName: tlsName}
	bob := newPhone(t, "bob", answering(nil, 180, 200))
	c.register(bob, "bob")
	alice := dialWebSocket(t, url, "alice", trust)

	alice.callBob(bob, "wss-call")

	msg := bob.build(sip.MESSAGE, "sip:alice@example.org", "sip:alice@example.org", "wss-message", 1)
	bob.send(c.addr, msg)
	alice.wait("the MESSAGE", "MESSAGE sip:alice@"+alice.host, "Via: SIP/2.0/WSS")
	if res := bob.waitResponse(msg, 200); res.StatusCode != 200 {
		t.Errorf("MESSAGE answered %d", res.StatusCode)
	}

	d := wsDialer(trust)
	d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": {"https://evil.example"}})
	_, _, _, err := d.Dial(t.Context(), url)
	var status ws.StatusError
	if !errors.As(err, &status) || int(status) != http.StatusForbidden {
		t.Errorf("handshake from a refused Origin: %v, want status 403", err)
	}
	c.idle(t)
}

// TestTLSCalled is a phone on TLS whose Contact names a port it does not
// listen on, as phones do: a UDP phone's INVITE reaches it over the
// connection it registered on.
func TestTLSCalled(t *testing.T) {
	cb := newCertbot(t)
	c := newCoreWith(t, productChain, Options{Certs: certStore(t, cb)})
	alice := dialTLS(t, c.e.testAddr("TLS"), cb.ca.Pool())
	if res := alice.request("REGISTER", "sip:alice@example.org", "tls-reg", "Expires: 300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER over TLS answered %d", res.StatusCode)
	}
	bob := newPhone(t, "bob", nil)
	inv := bob.build(sip.INVITE, "sip:alice@example.org", "sip:alice@example.org", "tls-called", 1)
	bob.send(c.addr, inv)
	deadline := time.After(coreWait)
	for {
		select {
		case msg, ok := <-alice.msgs:
			if !ok {
				t.Fatal("the TLS connection closed before the INVITE")
			}
			req, ok := msg.(*sip.Request)
			if !ok || req.Method != sip.INVITE {
				continue
			}
			if via := req.Via(); via == nil || via.Transport != "TLS" {
				t.Errorf("INVITE over TLS with Via %v", via)
			}
			alice.reply(req, 486)
			if res := bob.waitResponse(inv, 400); res.StatusCode != 486 {
				t.Errorf("INVITE answered %d, want the TLS phone's 486", res.StatusCode)
			}
			return
		case <-deadline:
			t.Fatal("no INVITE over the TLS phone's connection")
		}
	}
}
