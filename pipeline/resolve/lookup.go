package resolve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Bounds of the time an answer is kept: a TTL past MaxTTL is cut to it,
// and a negative answer is kept by its SOA (RFC 2308 5) at most
// MaxNegativeTTL.
const (
	MaxTTL         = 24 * time.Hour
	MaxNegativeTTL = 5 * time.Minute
)

// lookup returns the records of type qtype at name, from the cache or
// the servers, or ErrNotFound (NXDOMAIN or no data) or ErrUnreachable.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fqdn := dns.Fqdn(strings.ToLower(name))
	if e, ok := r.cache.get(fqdn, qtype); ok {
		if e.negative {
			return nil, fmt.Errorf("%w: %s %s (cached)", ErrNotFound, fqdn, dns.TypeToString[qtype])
		}
		return e.rrs, nil
	}
	res, err := r.exchange(ctx, fqdn, qtype)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	ttl := MaxTTL
	for _, rr := range res.Answer {
		if rr.Header().Rrtype == qtype {
			rrs = append(rrs, rr)
			ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
		}
	}
	if len(rrs) == 0 {
		r.cache.put(fqdn, qtype, entry{negative: true}, negativeTTL(res))
		return nil, fmt.Errorf("%w: %s %s (%s)", ErrNotFound, fqdn, dns.TypeToString[qtype], dns.RcodeToString[res.Rcode])
	}
	r.cache.put(fqdn, qtype, entry{rrs: rrs}, ttl)
	return rrs, nil
}

// negativeTTL is how long a negative answer is kept: the lesser of its
// SOA's TTL and minimum field (RFC 2308 5), at most MaxNegativeTTL; 0
// (not kept) without an SOA.
func negativeTTL(res *dns.Msg) time.Duration {
	for _, rr := range res.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, MaxNegativeTTL)
		}
	}
	return 0
}

// exchange asks each server in turn until one answers NOERROR or
// NXDOMAIN; a truncated answer is asked again over TCP.
func (r *Resolver) exchange(ctx context.Context, fqdn string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.SetEdns0(1232, false)
	var last error
	for _, server := range r.servers {
		res, _, err := r.client.ExchangeContext(ctx, q, server)
		if err == nil && res.Truncated {
			tcp := *r.client
			tcp.Net = "tcp"
			res, _, err = tcp.ExchangeContext(ctx, q, server)
		}
		switch {
		case err != nil:
			last = err
		case res.Rcode == dns.RcodeSuccess || res.Rcode == dns.RcodeNameError:
			return res, nil
		default:
			last = fmt.Errorf("%s answered %s", server, dns.RcodeToString[res.Rcode])
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %s %s: %v", ErrUnreachable, fqdn, dns.TypeToString[qtype], last)
}

// serverList is servers with their ports, or the nameservers of
// resolvConf ("" is /etc/resolv.conf).
func serverList(servers []string, resolvConf string) ([]string, error) {
	if len(servers) == 0 {
		if resolvConf == "" {
			resolvConf = "/etc/resolv.conf"
		}
		cc, err := dns.ClientConfigFromFile(resolvConf)
		if errors.Is(err, fs.ErrNotExist) {
			// As the C library does without the file.
			return []string{"127.0.0.1:53"}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("dns: %s names no nameserver", resolvConf)
		}
		return servers, nil
	}
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		addr, err := ServerAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, addr)
	}
	return out, nil
}

// ServerAddr is s ("host:port", "host", "[v6]:port" or "v6") with its
// port, 53 by default; the host must be an IP address.
func ServerAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "53"
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("dns server %q is not an IP address with an optional port", s)
	}
	return net.JoinHostPort(host, port), nil
}
