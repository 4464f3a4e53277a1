package config

import (
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// DNS is the [dns] section: the servers that the resolver of next hops
// (RFC 3263) asks, and its cache. It changes on restart.
type DNS struct {
	// Servers are the DNS servers, "ip" or "ip:port", asked in order.
	// Empty: the nameservers of /etc/resolv.conf.
	Servers []string `toml:"servers"`
	// Timeout bounds each query to one server.
	Timeout Duration `toml:"timeout"`
	// CacheSize bounds the answers kept (each for its TTL).
	CacheSize int `toml:"cache_size"`
}

// Defaults fills what the section left out.
func (d *DNS) Defaults() {
	if d.Timeout == 0 {
		d.Timeout = Duration(resolve.DefaultTimeout)
	}
	if d.CacheSize == 0 {
		d.CacheSize = resolve.DefaultCacheSize
	}
}

// Validate returns one error per mistake, each starting with the key.
func (d *DNS) Validate() []error {
	var errs []error
	for i, s := range d.Servers {
		if _, err := resolve.ServerAddr(s); err != nil {
			errs = append(errs, fmt.Errorf("servers[%d]: %w", i, err))
		}
	}
	if t := d.Timeout.D(); t < 100*time.Millisecond || t > 30*time.Second {
		errs = append(errs, fmt.Errorf("timeout: %s is not between 100ms and 30s", t))
	}
	if d.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("cache_size: %d is not positive", d.CacheSize))
	}
	return errs
}

// Resolver is the resolver's config for the section.
func (d *DNS) Resolver() resolve.Config {
	return resolve.Config{Servers: d.Servers, Timeout: d.Timeout.D(), CacheSize: d.CacheSize}
}
