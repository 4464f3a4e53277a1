package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Listen is one socket to listen on.
type Listen struct {
	// Network is "udp", "tcp", "tls", "ws" or "wss".
	Network string
	// Host is the IP address (or "" for all interfaces) and Port the port.
	Host string
	Port int
	// Advertise, from "?advertise=host[:port]", is the name the proxy puts
	// in Record-Route and Via for this listener's transport in place of
	// server.advertise: over TLS, the name its certificate is for.
	Advertise string
	// Path is, for a WebSocket listener, the only HTTP path its handshake
	// may name ("/sip"); empty, any path.
	Path string
}

// Addr returns "host:port" as net.Listen takes it.
func (l Listen) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the URI form, "udp://127.0.0.1:5060", "ws://0.0.0.0:8080/sip".
func (l Listen) String() string { return l.Network + "://" + l.Addr() + l.Path }

// ParseListen parses "udp://127.0.0.1:5060", "tcp://[::1]:5070",
// "tls://0.0.0.0:5061?advertise=sip.example.org", "ws://0.0.0.0:8080/sip" or
// "wss://0.0.0.0:8443/sip".
func ParseListen(s string) (Listen, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return Listen{}, fmt.Errorf("%q is not a URI such as \"udp://0.0.0.0:5060\"", s)
	}
	network := strings.ToLower(u.Scheme)
	switch network {
	case "udp", "tcp", "tls", "ws", "wss":
	default:
		return Listen{}, fmt.Errorf("%q: transport %q is not udp, tcp, tls, ws or wss", s, u.Scheme)
	}
	if u.User != nil || u.Fragment != "" || (u.Path != "" && network != "ws" && network != "wss") {
		return Listen{}, fmt.Errorf("%q: only transport://host:port (and a path for ws and wss) is allowed", s)
	}
	advertise, err := listenAdvertise(u)
	if err != nil {
		return Listen{}, fmt.Errorf("%q: %w", s, err)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return Listen{}, fmt.Errorf("%q: %v", s, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return Listen{}, fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, portStr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return Listen{}, fmt.Errorf("%q: host %q is not an IP address", s, host)
	}
	path := u.Path
	if path == "/" {
		path = "" // ws://host:port/ is ws://host:port: any path
	}
	return Listen{Network: network, Host: host, Port: port, Advertise: advertise, Path: path}, nil
}

// listenAdvertise returns the advertise parameter of a listen URI, the
// only one it may carry.
func listenAdvertise(u *url.URL) (string, error) {
	if u.RawQuery == "" {
		return "", nil
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", err
	}
	for k := range q {
		if k != "advertise" {
			return "", fmt.Errorf("unknown parameter %q (known: advertise)", k)
		}
	}
	a := q.Get("advertise")
	if len(q["advertise"]) != 1 || a == "" || strings.ContainsAny(a, " ;@/") {
		return "", fmt.Errorf("advertise: %q is not one host[:port]", a)
	}
	if h, p, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || h == "" {
			return "", fmt.Errorf("advertise: %q is not one host[:port]", a)
		}
	}
	return a, nil
}

// CheckListens returns a mistake for each entry of a listen list that does
// not parse, or that takes a socket an earlier entry takes: the same
// address and port on UDP, or on TCP, which tcp, tls, ws and wss all
// listen on. Port 0 (any free port) takes no fixed socket. Each mistake is
// a KeyError for "listen[i]".
func CheckListens(list []string) []error {
	var errs []error
	taken := map[string]int{}
	for i, s := range list {
		key := "listen[" + strconv.Itoa(i) + "]"
		l, err := ParseListen(s)
		if err != nil {
			errs = append(errs, &KeyError{Key: key, Err: err})
			continue
		}
		if l.Port == 0 {
			continue
		}
		kind := "TCP"
		if l.Network == "udp" {
			kind = "UDP"
		}
		host := l.Host
		if ip, err := netip.ParseAddr(host); err == nil {
			host = ip.Unmap().String()
		}
		socket := kind + " " + net.JoinHostPort(host, strconv.Itoa(l.Port))
		if j, ok := taken[socket]; ok {
			errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf("%q listens on %s, as listen[%d] %q does already", s, socket, j, list[j])})
			continue
		}
		taken[socket] = i
	}
	return errs
}

// CheckHTTPListen returns a mistake when the admin listener (http.listen)
// takes a TCP socket that an entry of the SIP listen list takes too: the
// same port on the same address, or where either address is a wildcard
// (0.0.0.0, ::), which the kernel refuses to bind twice.
func CheckHTTPListen(list []string, httpListen string) error {
	host, port, err := net.SplitHostPort(httpListen)
	if err != nil {
		return nil // Validate of [http] says what is wrong
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		return nil
	}
	for i, s := range list {
		l, err := ParseListen(s)
		if err != nil || l.Network == "udp" || l.Port != n {
			continue
		}
		if overlaps(host, l.Host) {
			return fmt.Errorf("http: listen: %q takes TCP port %d, as server.listen[%d] %q does", httpListen, n, i, s)
		}
	}
	return nil
}

// overlaps reports whether two listen hosts share a socket: equal, or one
// of them the wildcard address (or empty, which is the same).
func overlaps(a, b string) bool {
	wild := func(h string) bool {
		ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
		return h == "" || err == nil && ip.IsUnspecified()
	}
	if wild(a) || wild(b) {
		return true
	}
	ia, errA := netip.ParseAddr(strings.Trim(a, "[]"))
	ib, errB := netip.ParseAddr(strings.Trim(b, "[]"))
	if errA == nil && errB == nil {
		return ia.Unmap() == ib.Unmap()
	}
	return strings.EqualFold(a, b)
}
