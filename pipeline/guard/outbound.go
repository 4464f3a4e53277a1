package guard

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
)

// outbound is a connection the proxy dialed itself: to answer over a new
// connection (RFC 3261 18.2.2), or to send a request to a next hop.
type outbound struct {
	remote netip.AddrPort
	dst    netip.Addr // as the per-source cap counts it
	raw    syscall.RawConn
	last   atomic.Int64 // when it was dialed or last read from (UnixNano)
}

// Control admits a connection the proxy dials to address: it is the
// ControlContext of the dialer the stream transports use. Past
// MaxConnections such connections open, or MaxPerSource to one address,
// the dial fails: a sender that names a new Via port with each request
// and closes its own connection cannot make the proxy open descriptors
// without bound. These caps count apart from those of accepted
// connections.
//
// sipgo tells nobody when it closes a connection it dialed, nor times its
// reads out: the Guard keeps the socket's raw connection, whose Control
// fails once the socket is closed, forgets the closed ones when a cap is
// reached, and shuts those idle for IdleTimeout (SweepOutbound).
func (g *Guard) Control(_ context.Context, _, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	dst := source(ap.Addr())
	l := g.limits.Load()
	g.omu.Lock()
	defer g.omu.Unlock()
	refusal := g.overOutbound(l, dst)
	if refusal != "" {
		g.pruneOutbound()
		refusal = g.overOutbound(l, dst)
	}
	if refusal != "" {
		if log, skipped := g.refused.hit(time.Now()); log {
			g.log.Warn("outbound connection refused", "limit", refusal, "remote", address, "refused_before", skipped)
		}
		return fmt.Errorf("%s reached for the connections the proxy opens", refusal)
	}
	o := &outbound{remote: unmap(ap), dst: dst, raw: c}
	o.last.Store(time.Now().UnixNano())
	g.outbound = append(g.outbound, o)
	g.outboundTo[dst]++
	g.outboundAt[o.remote] = o
	return nil
}

// SweepOutbound shuts the connections the proxy dialed that nothing was
// read from for IdleTimeout: sipgo's reader then ends, and closes the
// connection. The engine calls it each second.
func (g *Guard) SweepOutbound(now time.Time) {
	idle := g.limits.Load().IdleTimeout
	g.omu.Lock()
	defer g.omu.Unlock()
	g.pruneOutbound()
	if idle <= 0 {
		return
	}
	for _, o := range g.outbound {
		if now.Sub(time.Unix(0, o.last.Load())) >= idle {
			_ = o.raw.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
		}
	}
}

// readOutbound notes data read from remote over a connection the proxy
// dialed, if it is one.
func (g *Guard) readOutbound(remote netip.AddrPort) {
	g.omu.Lock()
	o := g.outboundAt[remote]
	g.omu.Unlock()
	if o != nil {
		o.last.Store(time.Now().UnixNano())
	}
}

// Outbound returns the number of connections the proxy dialed that are
// still open.
func (g *Guard) Outbound() int {
	g.omu.Lock()
	defer g.omu.Unlock()
	g.pruneOutbound()
	return len(g.outbound)
}

// overOutbound reports the cap a new connection to dst would pass, or "".
func (g *Guard) overOutbound(l *Limits, dst netip.Addr) string {
	switch {
	case l.MaxConnections > 0 && len(g.outbound) >= l.MaxConnections:
		return "max_connections"
	case l.MaxPerSource > 0 && g.outboundTo[dst] >= l.MaxPerSource:
		return "max_connections_per_source"
	}
	return ""
}

// pruneOutbound forgets the outbound connections that are closed.
func (g *Guard) pruneOutbound() {
	open := g.outbound[:0]
	for _, o := range g.outbound {
		if o.raw.Control(func(uintptr) {}) == nil {
			open = append(open, o)
			continue
		}
		if g.outboundTo[o.dst]--; g.outboundTo[o.dst] <= 0 {
			delete(g.outboundTo, o.dst)
		}
		if g.outboundAt[o.remote] == o {
			delete(g.outboundAt, o.remote)
		}
	}
	clear(g.outbound[len(open):])
	g.outbound = open
}
