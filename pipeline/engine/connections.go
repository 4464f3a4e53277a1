package engine

import (
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/guard"
)

// ConnectionLimits returns the limits of the stream connections that the
// [server] section s sets, its caps derived from the limit on open files
// where s leaves them at 0.
func ConnectionLimits(s config.Server, descriptors uint64) guard.Limits {
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
// before the transaction layer, in the order they arrived: each takes its
// turn in its call there (callOrder). A message over a stream is a whole
// message delivered for the connection's guard, and a request's top Via
// gets the source address (markReceived).
func (e *Engine) onMessage(msg sip.Message) {
	if sip.IsReliable(msg.Transport()) {
		if src, err := netip.ParseAddrPort(msg.Source()); err == nil {
			e.guard.Delivered(src)
			if req, ok := msg.(*sip.Request); ok {
				markReceived(req, src.Addr().Unmap())
			}
		}
	}
	switch m := msg.(type) {
	case *sip.Request:
		if m.Method == sip.REGISTER && !sip.IsReliable(m.Transport()) {
			if src, err := netip.ParseAddrPort(m.Source()); err == nil {
				e.markLocal(m, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
			}
		}
		e.calls.arrivedRequest(m)
	case *sip.Response:
		e.arrivedResponse(m)
	}
}

// noteBinding tells the guard, once a REGISTER was answered 2xx, which
// stream connections the bindings of its AOR live on and until when: a
// phone registered over TCP keeps its connection however long it stays
// idle, and a connection the AOR's bindings left (a de-registration, a
// phone that registered again over a new connection) loses what they gave
// it, not what the bindings of other AORs on it give.
func (t *transaction) noteBinding() {
	store := t.e.svc.Location
	to := t.req.To()
	if store == nil || to == nil || !sip.IsReliable(t.transport) {
		return
	}
	aor := t.p.AORKey(&to.Address)
	bindings, _, err := store.Lookup(aor, time.Now())
	if err != nil {
		return
	}
	until := map[netip.AddrPort]time.Time{}
	for _, b := range bindings {
		remote, err := netip.ParseAddrPort(b.Received)
		if err != nil || !sip.IsReliable(b.Transport) {
			continue
		}
		if b.Expires.After(until[remote]) {
			until[remote] = b.Expires
		}
	}
	t.e.guard.Bind(aor, until)
}
