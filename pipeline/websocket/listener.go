// Package websocket checks the opening handshake of SIP over WebSocket
// (RFC 7118) before sipgo's WS transport upgrades a connection, and keeps
// the connections it lets through alive with pings. sipgo's upgrader
// answers any request that asks for a WebSocket, whatever its path,
// Origin and subprotocols, and sends no pings (docs/sipgo.md).
package websocket

import (
	"log/slog"
	"net"
	"time"
)

// Settings are what a Gate checks and how it pings; they may change
// between handshakes (a reload).
type Settings struct {
	// Origins are the allowed Origin header values, in lower case; empty,
	// any.
	Origins []string
	// PingInterval is how often each connection is pinged; a connection
	// that sent nothing for a whole interval after a ping is closed.
	PingInterval time.Duration
	// HandshakeTimeout bounds the time from the accept to the end of the
	// handshake's request.
	HandshakeTimeout time.Duration
}

// Gate checks the handshakes of one listener.
type Gate struct {
	// Path is the only request path accepted; empty, any.
	Path string
	// Settings returns the current settings.
	Settings func() Settings
	// Handshaken, when set, is told of each connection whose handshake
	// passed: the connection's guard counts the handshake as its first
	// message.
	Handshaken func(remote net.Addr)
	Log        *slog.Logger
}

// Listen wraps ln: its Accept returns only the connections whose
// handshake passed the checks, the handshake still unread. Each accepted
// connection is checked on a goroutine of its own, so that a slow client
// does not hold up the others; one that fails is answered and closed.
func (g *Gate) Listen(ln net.Listener) net.Listener {
	l := &listener{Listener: ln, g: g, passed: make(chan net.Conn), done: make(chan struct{})}
	go l.run()
	return l
}

type listener struct {
	net.Listener
	g      *Gate
	passed chan net.Conn
	done   chan struct{}
	err    error // why the inner Accept stopped, set before done closes
}

func (l *listener) run() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.err = err
			close(l.done)
			return
		}
		go l.hand(c)
	}
}

// hand checks c and hands it to Accept, or closes it.
func (l *listener) hand(c net.Conn) {
	wc := l.g.check(c)
	if wc == nil {
		return
	}
	select {
	case l.passed <- wc:
	case <-l.done:
		_ = wc.Close()
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.passed:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}
