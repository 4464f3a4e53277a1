package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultPingInterval is websocket.ping_interval's default.
const DefaultPingInterval = 30 * time.Second

// WebSocket is the [websocket] section: what the ws:// listeners check in
// a handshake, and how they keep their connections alive. It applies on
// reload, to the next handshakes and pings.
type WebSocket struct {
	// Origins are the web pages whose scripts may connect, as
	// "https://phone.example.com" (scheme, host and port, as a browser
	// sends the Origin header). A handshake with another Origin gets 403.
	// Empty: any Origin. A handshake without Origin (a phone, not a
	// browser) is not checked.
	Origins []string `toml:"origins"`
	// PingInterval is how often the proxy sends each WebSocket a ping: a
	// connection that sent nothing for a whole interval after a ping is
	// closed.
	PingInterval Duration `toml:"ping_interval"`
}

// Defaults fills what the section left out.
func (w *WebSocket) Defaults() {
	if w.PingInterval == 0 {
		w.PingInterval = Duration(DefaultPingInterval)
	}
}

// Validate returns one error per mistake, each starting with the key; the
// origins are written in the form a browser sends them.
func (w *WebSocket) Validate() []error {
	var errs []error
	for i, o := range w.Origins {
		norm, err := origin(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("origins[%d]: %w", i, err))
			continue
		}
		w.Origins[i] = norm
	}
	if d := w.PingInterval.D(); d < time.Second || d > time.Hour {
		errs = append(errs, fmt.Errorf("ping_interval: %s is not between 1s and 1h", d))
	}
	return errs
}

// origin returns o as a browser writes it in an Origin header, in lower
// case, or an error when o is not a scheme and a host.
func origin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin such as \"https://phone.example.com\"", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
