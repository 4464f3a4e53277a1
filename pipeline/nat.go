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
// before us. An address is compared with the source's IP, and over UDP its
// port too (a phone's stream connections come from a port of their own);
// a host name is not compared. rport is no verdict: almost every phone
// sends it.
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
		port := c.Address.Port
		if port == 0 {
			port = sip.DefaultPort(uriTransportOf(&c.Address))
		}
		if differs(c.Address.Host, port, src, udp) {
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

// uriTransportOf is the transport whose default port a URI without a port
// names: TLS for sips, else its transport parameter, else UDP.
func uriTransportOf(u *sip.Uri) string {
	if strings.EqualFold(u.Scheme, "sips") {
		return "TLS"
	}
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		return strings.ToUpper(tp)
	}
	return "UDP"
}
