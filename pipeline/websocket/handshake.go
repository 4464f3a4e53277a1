package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// MaxHandshake bounds the bytes of a handshake's request: its request line
// and header fields. A browser's, cookies included, fits in far less.
const MaxHandshake = 8 << 10

// subprotocol is the WebSocket subprotocol of SIP (RFC 7118 section 4.1).
const subprotocol = "sip"

// refusal is an HTTP answer that ends a handshake.
type refusal struct {
	status int
	reason string // the body, for the peer's developer
}

// check reads the handshake's request from c and checks it. It returns c,
// ready to replay the request to sipgo's upgrader, or nil once it has
// answered a refusal and closed c.
func (g *Gate) check(c net.Conn) net.Conn {
	s := g.Settings()
	timer := time.AfterFunc(s.HandshakeTimeout, func() { _ = c.Close() })
	head, rest, err := readHead(c)
	if !timer.Stop() {
		g.Log.Debug("websocket handshake timed out", "remote", c.RemoteAddr().String())
		return nil
	}
	var r *refusal
	switch {
	case errors.Is(err, errTooLarge):
		r = &refusal{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("the handshake is larger than %d bytes", MaxHandshake)}
	case err != nil:
		_ = c.Close()
		return nil
	default:
		r = g.refuse(head, s)
	}
	if r != nil {
		g.Log.Debug("websocket handshake refused", "remote", c.RemoteAddr().String(), "status", r.status, "reason", r.reason)
		_, _ = c.Write(r.response())
		_ = c.Close()
		return nil
	}
	if g.Handshaken != nil {
		g.Handshaken(c.RemoteAddr())
	}
	return newConn(c, g, head, rest)
}

// refuse returns why the handshake head is refused, or nil. The checks
// that sipgo's upgrader makes (the key, the version, Connection: Upgrade)
// are left to it: it answers them itself.
func (g *Gate) refuse(head []byte, s Settings) *refusal {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	switch {
	case err != nil:
		return &refusal{http.StatusBadRequest, "not an HTTP request"}
	case req.Method != http.MethodGet:
		return &refusal{http.StatusBadRequest, "a WebSocket handshake is a GET"}
	case g.Path != "" && req.URL.Path != g.Path:
		return &refusal{http.StatusNotFound, "no WebSocket at " + req.URL.Path}
	case !hasToken(req.Header.Values("Upgrade"), "websocket"):
		return &refusal{http.StatusUpgradeRequired, "SIP over WebSocket only (RFC 7118)"}
	case !allowedOrigin(req.Header.Get("Origin"), s.Origins):
		return &refusal{http.StatusForbidden, "Origin not allowed"}
	case !hasToken(req.Header.Values("Sec-WebSocket-Protocol"), subprotocol):
		return &refusal{http.StatusBadRequest, "the sip subprotocol is required (RFC 7118)"}
	}
	return nil
}

// allowedOrigin reports whether origin may connect: any when allowed is
// empty, and a request without Origin (not from a browser) always.
func allowedOrigin(origin string, allowed []string) bool {
	if origin == "" || len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(origin, a) {
			return true
		}
	}
	return false
}

// hasToken reports whether one of the comma-separated lists in values
// holds token, in any case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// response is the HTTP answer of r; the connection closes after it.
func (r *refusal) response() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, http.StatusText(r.status))
	if r.status == http.StatusUpgradeRequired {
		b.WriteString("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n", len(r.reason)+1, r.reason)
	return b.Bytes()
}

// errTooLarge is a handshake request past MaxHandshake.
var errTooLarge = errors.New("handshake too large")

// readHead reads c up to the blank line that ends the request's header
// fields: head is the request, rest what was read after it.
func readHead(c net.Conn) (head, rest []byte, err error) {
	buf := make([]byte, MaxHandshake)
	n := 0
	for {
		if n == len(buf) {
			return nil, nil, errTooLarge
		}
		k, err := c.Read(buf[n:])
		from := max(0, n-3)
		n += k
		if i := bytes.Index(buf[from:n], []byte("\r\n\r\n")); i >= 0 {
			end := from + i + 4
			if end == n {
				return buf[:end], nil, nil
			}
			return buf[:end], buf[end:n], nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}
