// Package guard bounds what stream connections (TCP, and the TLS and
// WebSocket listeners built on it) may take of the proxy: how many are
// open, in total and from one source, how long one may take to send a
// message, and how long one may stay idle. It wraps a net.Listener, so that
// it serves any transport whose server accepts from one.
package guard

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound the connections of a Guard. A zero value turns its bound
// off.
type Limits struct {
	// MaxConnections bounds the connections open at once over every
	// listener of the Guard; MaxPerSource those from one source (an IPv4
	// address, or an IPv6 /64). Past either, a new connection is closed
	// as soon as it is accepted.
	MaxConnections int
	MaxPerSource   int
	// HeaderTimeout bounds how long a connection may take to send a whole
	// message: the first one from the accept, each later one from the read
	// that starts it.
	HeaderTimeout time.Duration
	// IdleTimeout closes a connection that sent no message for that long,
	// unless a binding lives on it (see Guard.Bind), and one the proxy
	// dialed that nothing was read from for that long (SweepOutbound).
	IdleTimeout time.Duration
}

// Guard keeps count of the connections its listeners accepted. Its methods
// are safe for concurrent use.
type Guard struct {
	log    *slog.Logger
	limits atomic.Pointer[Limits]

	mu      sync.Mutex
	open    int
	sources map[netip.Addr]int
	conns   map[netip.AddrPort]*conn // by remote address
	// aors holds the connections each AOR has bindings on (Bind).
	aors map[string]map[netip.AddrPort]struct{}

	// omu guards the connections the proxy dialed (Control).
	omu        sync.Mutex
	outbound   []*outbound
	outboundTo map[netip.Addr]int
	outboundAt map[netip.AddrPort]*outbound // by remote address

	refused burst

	// onClose is told of each counted connection as it closes (OnClose).
	onClose atomic.Pointer[func(remote netip.AddrPort)]
}

// New returns a Guard with the given limits; log receives a line per burst
// of refused connections or failed accepts.
func New(l Limits, log *slog.Logger) *Guard {
	g := &Guard{log: log, sources: map[netip.Addr]int{}, conns: map[netip.AddrPort]*conn{}, aors: map[string]map[netip.AddrPort]struct{}{}, outboundTo: map[netip.Addr]int{}, outboundAt: map[netip.AddrPort]*outbound{}}
	g.limits.Store(&l)
	return g
}

// SetLimits replaces the limits. Connections already open stay open: the
// caps apply to the next accepts, the timeouts to the next reads.
func (g *Guard) SetLimits(l Limits) { g.limits.Store(&l) }

// OnClose sets f to be told the remote address of each connection the
// Guard counted, as it closes (the peer closed it, a read failed, or a
// timeout). It runs on the goroutine that closes the connection, which
// may hold the transport's connection pool: f must not call into the
// transport.
func (g *Guard) OnClose(f func(remote netip.AddrPort)) { g.onClose.Store(&f) }

// Open returns the number of connections open.
func (g *Guard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// Read is told of data read from remote, before it is parsed (the
// transport's read filter calls it, with the plain text of a TLS or
// WebSocket connection): data that is not a keep-alive starts a message,
// which must then be whole within the header timeout. A keep-alive
// between messages (RFC 5626 3.5.1) starts the idle timeout again, as a
// message does; before the first message it changes nothing.
func (g *Guard) Read(remote netip.AddrPort, data []byte) {
	c := g.conn(remote)
	if c == nil {
		g.readOutbound(unmap(remote))
		return
	}
	now := time.Now().UnixNano()
	if startsMessage(data) {
		c.started.CompareAndSwap(0, now)
		return
	}
	if c.last.Load() != 0 && c.started.Load() == 0 {
		c.last.Store(now)
	}
}

// Delivered is told that remote sent a whole message: the header timeout
// stops, the idle timeout starts again.
func (g *Guard) Delivered(remote netip.AddrPort) {
	if c := g.conn(remote); c != nil {
		c.last.Store(time.Now().UnixNano())
		c.started.Store(0)
	}
}

// Bind says which connections the bindings of aor live on, and until
// when (a phone registered over each): none is closed for being idle
// before the latest binding on it expires, whatever AOR it is of. A
// connection that held bindings of aor and is left out (its phone
// de-registered, or registered again over another connection) holds none
// of them any more.
func (g *Guard) Bind(aor string, until map[netip.AddrPort]time.Time) {
	latest := make(map[netip.AddrPort]int64, len(until))
	for remote, t := range until {
		latest[unmap(remote)] = t.UnixNano()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for remote := range g.aors[aor] {
		if _, ok := latest[remote]; !ok {
			if c := g.conns[remote]; c != nil {
				delete(c.bindings, aor)
				c.rebind()
			}
		}
	}
	on := map[netip.AddrPort]struct{}{}
	for remote, t := range latest {
		c := g.conns[remote]
		if c == nil {
			continue
		}
		if c.bindings == nil {
			c.bindings = map[string]int64{}
		}
		c.bindings[aor] = t
		c.rebind()
		on[c.remote] = struct{}{}
	}
	if len(on) == 0 {
		delete(g.aors, aor)
		return
	}
	g.aors[aor] = on
}

func (g *Guard) conn(remote netip.AddrPort) *conn {
	remote = unmap(remote)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[remote]
}

// admit counts a new connection from remote, or reports why it is refused.
func (g *Guard) admit(c *conn) (refusal string) {
	l := g.limits.Load()
	src := source(c.remote.Addr())
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case l.MaxConnections > 0 && g.open >= l.MaxConnections:
		return "max_connections"
	case l.MaxPerSource > 0 && g.sources[src] >= l.MaxPerSource:
		return "max_connections_per_source"
	}
	g.open++
	g.sources[src]++
	g.conns[c.remote] = c
	return ""
}

// release takes a closed connection off the counts, and tells OnClose's
// function when it was the connection of its remote address.
func (g *Guard) release(c *conn) {
	if g.forget(c) {
		if f := g.onClose.Load(); f != nil {
			(*f)(c.remote)
		}
	}
}

// forget takes c off the counts, and reports whether it was the
// connection of its remote address.
func (g *Guard) forget(c *conn) bool {
	src := source(c.remote.Addr())
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if g.sources[src]--; g.sources[src] <= 0 {
		delete(g.sources, src)
	}
	if g.conns[c.remote] != c {
		return false
	}
	delete(g.conns, c.remote)
	for aor := range c.bindings {
		if delete(g.aors[aor], c.remote); len(g.aors[aor]) == 0 {
			delete(g.aors, aor)
		}
	}
	return true
}

// source is what the per-source cap counts: an IPv4 address, or the /64
// of an IPv6 one (a single host often holds a whole /64).
func source(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// startsMessage reports whether data holds more than keep-alives (CRLF,
// RFC 5626 3.5.1) and the NUL bytes sipgo skips.
func startsMessage(data []byte) bool {
	for _, b := range data {
		if b != '\r' && b != '\n' && b != 0 {
			return true
		}
	}
	return false
}
