package pipeline

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Socket is a local address the proxy listens on.
type Socket struct {
	// Transport is "UDP", "TCP", "TLS", "WS" or "WSS".
	Transport string
	// Addr is the bound address; an unspecified IP (0.0.0.0, ::) means all
	// interfaces.
	Addr netip.AddrPort
	// Advertise is the listener's own advertised host[:port], which takes
	// the place of server.advertise for its transport; "" for none.
	Advertise string
}

// advertised returns the socket's own advertised host and port (the
// socket's port when Advertise names none), or "" without one.
func (s Socket) advertised() (string, int) {
	if s.Advertise == "" {
		return "", 0
	}
	if h, p, err := net.SplitHostPort(s.Advertise); err == nil {
		port, _ := strconv.Atoi(p)
		return h, port
	}
	return strings.Trim(s.Advertise, "[]"), int(s.Addr.Port())
}

// Ours decides whether a URI names this proxy.
type Ours struct {
	domains map[string]bool
	sockets []Socket
	// local holds this host's interface addresses, for sockets bound to all
	// interfaces.
	local map[netip.Addr]bool
	// advertised is the advertised host and port.
	advHost string
	advPort int
}

// NewOurs returns the rule for the given domains, sockets, interface
// addresses and advertised host:port.
func NewOurs(domains []string, sockets []Socket, local []netip.Addr, advHost string, advPort int) *Ours {
	o := &Ours{domains: map[string]bool{}, sockets: sockets, local: map[netip.Addr]bool{}, advHost: strings.ToLower(advHost), advPort: advPort}
	for _, d := range domains {
		o.domains[strings.ToLower(d)] = true
	}
	for _, a := range local {
		o.local[a.Unmap()] = true
	}
	return o
}

// URI reports whether u names this proxy: its host is one of our domains
// (any port), or its host and port are those of a socket we listen on or
// of the advertised address.
func (o *Ours) URI(u *sip.Uri) bool {
	if u == nil {
		return false
	}
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	if o.domains[host] {
		return true
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if strings.EqualFold(u.Scheme, "sips") {
			port = 5061
		}
	}
	if host == o.advHost && port == o.advPort {
		return true
	}
	for _, s := range o.sockets {
		if h, p := s.advertised(); h != "" && host == strings.ToLower(h) && port == p {
			return true
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, s := range o.sockets {
		if int(s.Addr.Port()) != port {
			continue
		}
		a := s.Addr.Addr().Unmap()
		if a == ip {
			return true
		}
		if a.IsUnspecified() && (o.local[ip] || ip.IsLoopback()) {
			return true
		}
	}
	return false
}

// Domain reports whether host is one of our domains.
func (o *Ours) Domain(host string) bool {
	return o.domains[strings.ToLower(host)]
}
