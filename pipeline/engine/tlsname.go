package engine

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// A TLS connection to a resolved hop verifies the domain of the URI, not
// the address nor an SRV target (RFC 5922 4.1), and sends it as SNI. sipgo
// verifies the host of the request's destination, which for a hop is its
// address; so the engine dials such a connection itself, with the name to
// verify, and hands it to sipgo's TLS transport through dialedListener,
// as if it had been accepted: sipgo keeps it in its pool by the address
// and sends the branch over it.

// dialedListener is a listener whose Accept returns the TLS connections
// the engine dialed. sipgo's accept loop puts each one in its pool before
// it calls Accept again, which tells the dialer the connection is ready.
type dialedListener struct {
	addr  net.Addr
	conns chan handoff
	done  chan struct{}
	close sync.Once
	// last is the handoff Accept returned last (only the accept loop
	// reads and writes it).
	last chan struct{}
}

type handoff struct {
	conn  net.Conn
	added chan struct{}
}

func newDialedListener(ap netip.AddrPort) *dialedListener {
	return &dialedListener{addr: net.TCPAddrFromAddrPort(ap), conns: make(chan handoff), done: make(chan struct{})}
}

func (l *dialedListener) Accept() (net.Conn, error) {
	if l.last != nil {
		close(l.last)
		l.last = nil
	}
	select {
	case h := <-l.conns:
		l.last = h.added
		return h.conn, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *dialedListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *dialedListener) Addr() net.Addr { return l.addr }

// hand gives sipgo a connection and waits until it is in sipgo's pool.
func (l *dialedListener) hand(c net.Conn) error {
	h := handoff{conn: c, added: make(chan struct{})}
	select {
	case l.conns <- h:
	case <-l.done:
		return net.ErrClosed
	}
	select {
	case <-h.added:
		return nil
	case <-l.done:
		return net.ErrClosed
	}
}

// dialTLSName makes sure a TLS connection to hop is open, dialing one
// that verifies hop.Name when there is none. A hop named by an IP
// address, or on another transport, is left to sipgo. An open connection
// is reused, whatever name it was verified for, as sipgo reuses its own.
func (e *Engine) dialTLSName(hop resolve.Target) error {
	if hop.Transport != "TLS" || e.dialed == nil || e.certs == nil {
		return nil
	}
	if _, err := netip.ParseAddr(hop.Name); err == nil {
		return nil
	}
	addr := hop.Addr.String()
	mu, _ := e.tlsDials.LoadOrStore(addr, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if c, err := e.tp.GetConnection("TLS", addr); err == nil && c != nil {
		_, _ = c.TryClose() // GetConnection took a reference
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	d := e.tcpTransport().DialerCreate(nil)
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	cfg := e.certs.ClientConfig()
	cfg.ServerName = hop.Name
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return fmt.Errorf("TLS handshake with %s for %s: %w", addr, hop.Name, err)
	}
	if err := e.dialed.hand(conn); err != nil {
		_ = conn.Close()
		return err
	}
	return nil
}
