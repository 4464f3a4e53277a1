package registrar

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// Defaults of the keepalive keys.
const (
	// DefaultKeepalive is the time between pings: below the 30 s after
	// which the shortest-lived NAT mappings of UDP are forgotten.
	DefaultKeepalive = 25 * time.Second
	// DefaultKeepaliveTimeout is how long a binding behind NAT may leave
	// its pings unanswered (and not register) before it is removed: four
	// pings at the default interval.
	DefaultKeepaliveTimeout = 120 * time.Second
	// minKeepalive keeps a typo from flooding phones with pings.
	minKeepalive = 100 * time.Millisecond
)

// syncKeepalive tells the engine's pinger which of the AOR's bindings to
// ping after reg: the UDP bindings reg wrote from behind NAT, and those it
// pinged before that are still bound by the same REGISTER.
func (r *Registrar) syncKeepalive(ctx *pipeline.Context, reg *registration, bindings []location.Binding, now time.Time) {
	pinger := ctx.Services().Keepalive
	if pinger == nil {
		return
	}
	var watch []keepalive.Flow
	if r.Keepalive > 0 {
		for _, b := range bindings {
			if b.CallID != reg.callID || b.CSeq != reg.cseq || !behindNAT(ctx, b) {
				continue
			}
			received, _ := netip.ParseAddrPort(b.Received)
			watch = append(watch, keepalive.Flow{
				Contact: b.Contact, Instance: b.Instance, RegID: b.RegID(), CallID: b.CallID, CSeq: b.CSeq,
				Received: received, Local: localSocket(ctx.Request), Expires: b.Expires,
				Interval: r.Keepalive.D(), Timeout: r.KeepaliveTimeout.D(), Log: r.log,
			})
		}
	}
	pinger.Sync(reg.aor, bindings, watch, now)
}

// restoreFlow is the flow that pings b after a restart of the proxy, with
// the registrar's settings as they are now: a UDP binding from behind NAT
// that this node holds. A store of one node (bolt, memory) holds only its
// own; in a shared one (Redis) only the bindings that name this node are
// its own, and those written before bindings named their node are left
// to their next REGISTER.
func (r *Registrar) restoreFlow(b location.Binding) (keepalive.Flow, bool) {
	if !b.NAT || !strings.EqualFold(b.Transport, "UDP") {
		return keepalive.Flow{}, false
	}
	if location.Shared(r.store) && (r.node == "" || b.Node != r.node) {
		return keepalive.Flow{}, false
	}
	received, err := netip.ParseAddrPort(b.Received)
	if err != nil {
		return keepalive.Flow{}, false
	}
	local, _ := netip.ParseAddrPort(b.Local)
	return keepalive.Flow{
		AOR: b.AOR, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID(), CallID: b.CallID, CSeq: b.CSeq,
		Received: received, Local: local, Expires: b.Expires,
		Interval: r.Keepalive.D(), Timeout: r.KeepaliveTimeout.D(), Log: r.log,
	}, true
}

// behindNAT reports whether binding b, just written by the REGISTER of
// ctx, belongs to a phone behind NAT that the proxy keeps open with pings:
// one registered over UDP that the registrar marked as behind NAT
// (pipeline.DetectNAT, the registrar's nat key).
func behindNAT(ctx *pipeline.Context, b location.Binding) bool {
	return b.NAT && strings.EqualFold(ctx.Transport, "UDP")
}

// localSocket is the UDP socket a REGISTER came in on, which the engine
// notes in its Laddr; invalid when it could not tell.
func localSocket(req *sip.Request) netip.AddrPort {
	if req.Laddr.IP == nil {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(req.Laddr.IP.String(), strconv.Itoa(req.Laddr.Port)))
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
