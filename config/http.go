package config

import (
	"fmt"
	"net"
)

// HTTP is the [http] section: the listener for metrics, health, the
// admin API and the web console. It is off unless listen is set.
type HTTP struct {
	// Listen is "host:port"; "" turns the listener off. Keep it on
	// loopback (127.0.0.1:9060) unless a firewall guards it.
	Listen string `toml:"listen"`
	// TLS serves HTTPS with the certificates of the [tls] section, which
	// reload live as the SIP listeners' do. The console runs on an
	// address other than loopback only with it.
	TLS bool `toml:"tls"`
	// Token protects the admin API (/admin/...): requests carry
	// "Authorization: Bearer <token>". Without a token the admin API is
	// off; /metrics, /health and /ready need none.
	Token string `toml:"token"`
	// Pprof serves Go's profiler under /debug/pprof/ (behind the token).
	Pprof bool `toml:"pprof"`
	// Console serves the web console, and keeps the recent calls it shows
	// (unset is on). Off, the listener serves the rest without the cost of
	// keeping every call's messages.
	Console *bool `toml:"console"`
}

// ConsoleOn reports whether the web console is wanted: console unset or
// true.
func (h HTTP) ConsoleOn() bool { return h.Console == nil || *h.Console }

// Equal reports whether h and o set up the same listener: console by
// what it says, not by its pointer, which each parse makes anew.
func (h HTTP) Equal(o HTTP) bool {
	hc, oc := h.ConsoleOn(), o.ConsoleOn()
	h.Console, o.Console = nil, nil
	return h == o && hc == oc
}

// Validate returns one error per mistake, each starting with the key.
func (h *HTTP) Validate() []error {
	var errs []error
	if h.Listen != "" {
		host, port, err := net.SplitHostPort(h.Listen)
		if err != nil || port == "" {
			errs = append(errs, fmt.Errorf("listen: %q is not host:port such as \"127.0.0.1:9060\"", h.Listen))
		} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			errs = append(errs, fmt.Errorf("listen: host %q is not an IP address", host))
		}
	}
	if h.Token != "" && len(h.Token) < 16 {
		errs = append(errs, fmt.Errorf("token: shorter than 16 characters: make it long and random"))
	}
	if h.Pprof && h.Token == "" {
		errs = append(errs, fmt.Errorf("pprof: needs a token"))
	}
	return errs
}
