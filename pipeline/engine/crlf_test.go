package engine

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestCRLFKeepalive sends the RFC 5626 section 3.5.1 keepalive, a double
// CRLF, over each stream transport and checks the CRLF that answers it
// (sipgo's transports write it; this test keeps them doing so): over TCP
// and TLS as bytes on the stream, over WebSocket in a frame.
func TestCRLFKeepalive(t *testing.T) {
	cb := newCertbot(t)
	c := newCoreOn(t, wsSections, productChain, Options{Certs: certStore(t, cb)}, "ws://127.0.0.1:0/sip")
	tests := []struct {
		name string
		dial func(t *testing.T) net.Conn
		pong func(conn net.Conn) ([]byte, error)
	}{
		{"TCP", func(t *testing.T) net.Conn {
			conn, err := net.Dial("tcp4", c.e.testAddr("TCP"))
			if err != nil {
				t.Fatal(err)
			}
			return conn
		}, readTwo},
		{"TLS", func(t *testing.T) net.Conn {
			conn, err := tls.Dial("tcp4", c.e.testAddr("TLS"), &tls.Config{RootCAs: cb.ca.Pool(), ServerName: tlsName})
			if err != nil {
				t.Fatal(err)
			}
			return conn
		}, readTwo},
		{"WS", func(t *testing.T) net.Conn {
			d := wsDialer(nil)
			conn, _, _, err := d.Dial(t.Context(), "ws://"+c.e.testAddr("WS")+"/sip")
			if err != nil {
				t.Fatal(err)
			}
			return wsConn{conn}
		}, func(conn net.Conn) ([]byte, error) {
			data, op, err := wsutil.ReadServerData(conn.(wsConn).Conn)
			if err == nil && op != ws.OpText {
				return nil, io.ErrUnexpectedEOF
			}
			return data, err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := tc.dial(t)
			defer conn.Close()
			for i := range 2 {
				if w, ok := conn.(wsConn); ok {
					if err := wsutil.WriteClientMessage(w.Conn, ws.OpText, []byte("\r\n\r\n")); err != nil {
						t.Fatal(err)
					}
				} else if _, err := conn.Write([]byte("\r\n\r\n")); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(coreWait))
				got, err := tc.pong(conn)
				if err != nil || string(got) != "\r\n" {
					t.Fatalf("keepalive %d: answered %q (%v), want CRLF", i, got, err)
				}
			}
		})
	}
}

// wsConn marks a WebSocket connection, whose messages go in frames.
type wsConn struct{ net.Conn }

// readTwo reads the two bytes of a CRLF from a stream.
func readTwo(conn net.Conn) ([]byte, error) {
	b := make([]byte, 2)
	_, err := io.ReadFull(conn, b)
	return b, err
}
