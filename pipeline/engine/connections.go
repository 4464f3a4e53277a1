package engine

import (
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/guard"
)

// connectionLimits returns the limits of the stream connections that the
// [server] section s sets, its caps derived from the limit on open files
// where s leaves them at 0.
func connectionLimits(s config.Server, descriptors uint64) guard.Limits {
	l := guard.Limits{
		MaxConnections: s.MaxConnections,
		MaxPerSource:   s.MaxConnectionsPerSource,
		HeaderTimeout:  s.HeaderTimeout.D(),
		IdleTimeout:    s.IdleTimeout.D(),
	}
	if descriptors > 0 {
		total, perSource := guard.DefaultCaps(descriptors)
		if l.MaxConnections == 0 {
			l.MaxConnections = total
		}
		if l.MaxPerSource == 0 {
			l.MaxPerSource = perSource
		}
	}
	return l
}

// onMessage sees every message a transport read, on its read loop and
// before the transaction layer. A message over a stream is a whole message
// delivered for the connection's guard, and a request's top Via gets the
// source address (markReceived).
func (e *Engine) onMessage(msg sip.Message) {
	if !sip.IsReliable(msg.Transport()) {
		return
	}
	src, err := netip.ParseAddrPort(msg.Source())
	if err != nil {
		return
	}
	e.guard.Delivered(src)
	if req, ok := msg.(*sip.Request); ok {
		markReceived(req, src.Addr().Unmap())
	}
}

// noteBinding tells the guard until when a binding lives on the
// connection a REGISTER came over, once it was answered 2xx: a phone
// registered over TCP keeps its connection however long it stays idle.
func (t *transaction) noteBinding() {
	store := t.e.svc.Location
	to := t.req.To()
	if store == nil || to == nil || !sip.IsReliable(t.transport) || !t.src.IP.IsValid() {
		return
	}
	bindings, _, err := store.Lookup(t.p.AORKey(&to.Address), time.Now())
	if err != nil {
		return
	}
	var until time.Time
	src := t.src.String()
	for _, b := range bindings {
		if b.Received == src && strings.EqualFold(b.Transport, t.transport) && b.Expires.After(until) {
			until = b.Expires
		}
	}
	t.e.guard.Bound(netip.AddrPortFrom(t.src.IP, uint16(t.src.Port)), until)
}
