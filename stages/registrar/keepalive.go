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

// behindNAT reports whether binding b, just written by the REGISTER of
// ctx, belongs to a phone behind NAT that the proxy keeps open with pings:
// the REGISTER came over UDP straight from the phone (one Via, no Path;
// a relayed request differs from its source as a matter of course), and
// its Contact or top Via names another address than the one it came from.
// A Contact or Via naming a host, not an IP address, counts as another.
func behindNAT(ctx *pipeline.Context, b location.Binding) bool {
	req := ctx.Request
	if !strings.EqualFold(ctx.Transport, "UDP") || !firstHop(req) || !ctx.Source.IP.IsValid() {
		return false
	}
	src := netip.AddrPortFrom(ctx.Source.IP.Unmap(), uint16(ctx.Source.Port))
	var contact sip.Uri
	if err := sip.ParseUri(b.Contact, &contact); err != nil {
		return false
	}
	if !sameAddr(contact.Host, contact.Port, src) {
		return true
	}
	via := req.Via()
	return via != nil && !sameAddr(via.Host, via.Port, src)
}

// sameAddr reports whether host and port (0: 5060) name src.
func sameAddr(host string, port int, src netip.AddrPort) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	if port == 0 {
		port = 5060
	}
	return ip.Unmap() == src.Addr() && port == int(src.Port())
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
