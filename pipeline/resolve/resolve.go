// Package resolve finds where a SIP request goes (RFC 3263): for a host
// name without a port, NAPTR, then SRV, then A and AAAA records, into an
// ordered list of every address to try. It asks the DNS servers of
// /etc/resolv.conf, or those of config, and keeps the answers for their
// TTL (negative ones too, RFC 2308).
package resolve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultCacheSize = 10000
)

// Target is one place a request can be sent to.
type Target struct {
	// Addr is the address and port.
	Addr netip.AddrPort
	// Transport is "UDP", "TCP", "TLS", "WS" or "WSS".
	Transport string
	// Name is the host of the URI resolved: the name a TLS connection
	// verifies and sends as SNI (RFC 5922 4.1), never an SRV target.
	Name string
	// Host is the name whose address record gave Addr (an SRV target, or
	// Name): for logs.
	Host string
}

// String is "transport:addr", for logs.
func (t Target) String() string { return strings.ToLower(t.Transport) + ":" + t.Addr.String() }

// Config says which servers the resolver asks and how.
type Config struct {
	// Servers are "host:port" (or "host", port 53) addresses of DNS
	// servers, asked in order. Empty: the nameservers of ResolvConf.
	Servers []string
	// ResolvConf is read when Servers is empty; "" is /etc/resolv.conf.
	ResolvConf string
	// Hosts is a hosts file consulted for addresses before the DNS, as
	// the C library does; "" is /etc/hosts, "-" none.
	Hosts string
	// Timeout bounds each query to one server.
	Timeout time.Duration
	// CacheSize bounds the answers kept.
	CacheSize int
	// Supports says whether the proxy can send over a transport; nil
	// supports UDP, TCP and TLS. Records for other transports are skipped.
	Supports func(transport string) bool
	// Clock is the time the cache reads; nil is time.Now.
	Clock func() time.Time
	// Rand picks among SRV records of one priority by weight; nil is
	// math/rand/v2. It returns a number in [0, n).
	Rand func(n int) int
}

// Resolver resolves SIP URIs to targets. It is safe for concurrent use.
type Resolver struct {
	servers  []string
	client   *dns.Client
	hosts    map[string][]netip.Addr
	supports func(string) bool
	cache    *cache
	rand     func(int) int
}

// Errors of Resolve: ErrNotFound when the name has no record that leads
// to an address (NXDOMAIN or no data at every step), ErrUnreachable when
// the DNS servers gave no answer (timeout, SERVFAIL).
var (
	ErrNotFound    = errors.New("no such name")
	ErrUnreachable = errors.New("the DNS servers gave no answer")
)

// New returns a resolver for cfg.
func New(cfg Config) (*Resolver, error) {
	servers, err := serverList(cfg.Servers, cfg.ResolvConf)
	if err != nil {
		return nil, err
	}
	hosts, err := readHosts(cfg.Hosts)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Supports == nil {
		cfg.Supports = func(tp string) bool { return tp == "UDP" || tp == "TCP" || tp == "TLS" }
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.IntN
	}
	return &Resolver{
		servers:  servers,
		client:   &dns.Client{Timeout: cfg.Timeout},
		hosts:    hosts,
		supports: cfg.Supports,
		cache:    newCache(cfg.CacheSize, cfg.Clock),
		rand:     cfg.Rand,
	}, nil
}

// Resolve returns every target of uri, in the order to try them (RFC 3263
// 4): a numeric host as it is; a host with a port by its A and AAAA
// records; a host without one by NAPTR, then SRV (every record, by
// priority and weight, RFC 2782), then A and AAAA on the transport's
// default port. A sips URI is reached over TLS (or WSS) only.
func (r *Resolver) Resolve(ctx context.Context, uri *sip.Uri) ([]Target, error) {
	host := strings.TrimSuffix(strings.Trim(uri.Host, "[]"), ".")
	sips := strings.EqualFold(uri.Scheme, "sips")
	tp := uriTransport(uri, sips)
	if ip, err := netip.ParseAddr(host); err == nil {
		if tp == "" {
			tp = defaultTransport(sips)
		}
		return []Target{{Addr: netip.AddrPortFrom(ip.Unmap(), port(uri.Port, tp)), Transport: tp, Name: host, Host: host}}, nil
	}
	if host == "" {
		return nil, fmt.Errorf("%w: the URI has no host", ErrNotFound)
	}
	if uri.Port != 0 {
		if tp == "" {
			tp = defaultTransport(sips)
		}
		return r.addresses(ctx, nil, host, host, uint16(uri.Port), tp)
	}
	var services []service
	if tp == "" {
		naptr, err := r.naptr(ctx, host, sips)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		services = naptr
		if len(services) == 0 {
			services = r.srvNames(host, sips, "")
		}
	} else {
		services = r.srvNames(host, sips, tp)
	}
	var out []Target
	found := false
	var lastErr error
	for _, s := range services {
		ts, err := r.srv(ctx, host, s)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				lastErr = err
			}
			continue
		}
		found = true
		out = appendNew(out, ts)
	}
	if found {
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: %s has SRV records, but none with an address", ErrNotFound, host)
		}
		return out, nil
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if tp == "" {
		tp = defaultTransport(sips)
	}
	return r.addresses(ctx, nil, host, host, port(0, tp), tp)
}

// uriTransport is the transport the URI's transport parameter names,
// made TLS (or WSS) for a sips URI (RFC 3261 26.2.2); "" without one.
func uriTransport(uri *sip.Uri, sips bool) string {
	tp, _ := uri.UriParams.Get("transport")
	tp = strings.ToUpper(tp)
	switch {
	case tp == "":
		return ""
	case sips && (tp == "WS" || tp == "WSS"):
		return "WSS"
	case sips:
		return "TLS"
	}
	return tp
}

func defaultTransport(sips bool) string {
	if sips {
		return "TLS"
	}
	return "UDP"
}

// port is p, or the transport's default port (RFC 3263 4.2).
func port(p int, tp string) uint16 {
	if p != 0 {
		return uint16(p)
	}
	return uint16(sip.DefaultPort(tp))
}

// appendNew appends the targets of ts that out does not hold yet.
func appendNew(out, ts []Target) []Target {
next:
	for _, t := range ts {
		for _, o := range out {
			if o.Addr == t.Addr && o.Transport == t.Transport {
				continue next
			}
		}
		out = append(out, t)
	}
	return out
}
