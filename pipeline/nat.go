package pipeline

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// NAT is the verdict on whether a request came from behind NAT: a phone
// whose router rewrote its address writes in its top Via and Contact an
// address (its private one) other than the one its packets come from.
type NAT struct {
	// Behind is true when the top Via or a Contact names another address
	// than the request's source.
	Behind bool
	// Reason says why, for the trace: which header named which address,
	// or why there was nothing to compare.
	Reason string
}

// DetectNAT compares the top Via and the Contacts of req with src, the
// address it came from over transport. Only a request straight from the
// phone is compared (one Via, no Path): a relayed one comes from the proxy
// before us. The Via's address is compared with the source's IP, and over
// UDP its port too (a phone's stream connections come from a port of their
// own); a Contact counts only when it names a private address other than
// the source's, since a public one may be another device's (a third-party
// registration, an alias). A host name is not compared. rport is no
// verdict: almost every phone sends it.
func DetectNAT(req *sip.Request, src Source, transport string) NAT {
	vias := req.GetHeaders("Via")
	switch {
	case !src.IP.IsValid() || len(vias) == 0:
		return NAT{Reason: "no source to compare"}
	case len(vias) > 1:
		return NAT{Reason: "relayed: more than one Via"}
	case req.GetHeader("Path") != nil:
		return NAT{Reason: "relayed: Path"}
	}
	udp := strings.EqualFold(transport, "UDP")
	if via, ok := vias[0].(*sip.ViaHeader); ok {
		port := via.Port
		if port == 0 {
			port = sip.DefaultPort(via.Transport)
		}
		if differs(via.Host, port, src, udp) {
			return NAT{Behind: true, Reason: "Via " + hostPort(via.Host, via.Port) + " is not the source " + src.String()}
		}
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.Wildcard {
			continue
		}
		if privateElsewhere(c.Address.Host, src) {
			return NAT{Behind: true, Reason: "Contact " + hostPort(c.Address.Host, c.Address.Port) + " is not the source " + src.String()}
		}
	}
	return NAT{Reason: "Via and Contact name the source " + src.String()}
}

// differs reports whether host and port name another address than src:
// another IP, or over UDP another port. A host name differs from nothing.
func differs(host string, port int, src Source, udp bool) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	return ip.Unmap() != src.IP.Unmap() || (udp && port != src.Port)
}

// sharedSpace is the carrier-grade NAT range of RFC 6598, behind which
// addresses are as unreachable as private ones.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// privateElsewhere reports whether host is a private address (RFC 1918,
// RFC 6598, RFC 4193, link-local) other than src's IP.
func privateElsewhere(host string, src Source) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	private := ip.IsPrivate() || sharedSpace.Contains(ip) || ip.IsLinkLocalUnicast()
	return private && ip != src.IP.Unmap()
}

// hostPort writes host and port (none when 0) as a header names them.
func hostPort(host string, port int) string {
	host = strings.Trim(host, "[]")
	if port == 0 {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
