package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Listen is one socket to listen on.
type Listen struct {
	// Network is "udp" or "tcp".
	Network string
	// Host is the IP address (or "" for all interfaces) and Port the port.
	Host string
	Port int
}

// Addr returns "host:port" as net.Listen takes it.
func (l Listen) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the URI form, "udp://127.0.0.1:5060".
func (l Listen) String() string { return l.Network + "://" + l.Addr() }

// ParseListen parses "udp://127.0.0.1:5060" or "tcp://[::1]:5070".
func ParseListen(s string) (Listen, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return Listen{}, fmt.Errorf("%q is not a URI such as \"udp://0.0.0.0:5060\"", s)
	}
	network := strings.ToLower(u.Scheme)
	if network != "udp" && network != "tcp" {
		return Listen{}, fmt.Errorf("%q: transport %q is not udp or tcp", s, u.Scheme)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return Listen{}, fmt.Errorf("%q: only transport://host:port is allowed", s)
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
	return Listen{Network: network, Host: host, Port: port}, nil
}
