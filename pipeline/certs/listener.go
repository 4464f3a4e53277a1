package certs

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"
)

// Listen returns ln serving TLS with the store's certificates. Each
// connection's handshake runs on its first read or write, bounded by the
// store's handshake timeout; a connection whose handshake fails (a
// timeout, garbage, a client certificate refused) is closed and reads as
// io.EOF, as one the peer closed.
func (s *Store) Listen(ln net.Listener) net.Listener {
	return &listener{Listener: ln, config: s.ServerConfig(), timeout: s.opts.HandshakeTimeout, store: s}
}

type listener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
	store   *Store
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.config), timeout: l.timeout, store: l.store}, nil
}

// serverConn is an accepted connection whose handshake is bounded.
type serverConn struct {
	*tls.Conn
	timeout time.Duration
	store   *Store
	once    sync.Once
	err     error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx := context.Background()
		if c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = err
			c.store.log.Debug("tls handshake failed", "remote", c.RemoteAddr().String(), "error", err)
			_ = c.Conn.NetConn().Close()
		}
	})
	return c.err
}

// Read reads after the handshake; a failed handshake reads as io.EOF.
func (c *serverConn) Read(b []byte) (int, error) {
	if c.handshake() != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

// Write writes after the handshake.
func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
