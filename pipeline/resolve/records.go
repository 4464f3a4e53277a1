package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// service is one SRV name to ask, and the transport its records serve.
type service struct {
	name      string
	transport string
}

// naptrServices maps the NAPTR services SIP uses (RFC 3263 4.1, RFC 7118
// 5) to transports; sips says the service is SIPS.
var naptrServices = map[string]struct {
	transport string
	sips      bool
}{
	"SIP+D2U":  {"UDP", false},
	"SIP+D2T":  {"TCP", false},
	"SIPS+D2T": {"TLS", true},
	"SIP+D2W":  {"WS", false},
	"SIPS+D2W": {"WSS", true},
}

// naptr returns the SRV names the NAPTR records of host point to, for the
// transports the proxy supports, by order and preference (RFC 3403). For a
// sips URI only the SIPS services count.
func (r *Resolver) naptr(ctx context.Context, host string, sips bool) ([]service, error) {
	rrs, err := r.lookup(ctx, host, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	var recs []*dns.NAPTR
	for _, rr := range rrs {
		n, ok := rr.(*dns.NAPTR)
		if !ok || !strings.EqualFold(n.Flags, "s") || n.Replacement == "" || n.Replacement == "." {
			continue
		}
		s, ok := naptrServices[strings.ToUpper(n.Service)]
		if !ok || (sips && !s.sips) || !r.supports(s.transport) {
			continue
		}
		recs = append(recs, n)
	}
	slices.SortStableFunc(recs, func(a, b *dns.NAPTR) int {
		if a.Order != b.Order {
			return int(a.Order) - int(b.Order)
		}
		return int(a.Preference) - int(b.Preference)
	})
	out := make([]service, 0, len(recs))
	for _, n := range recs {
		out = append(out, service{name: n.Replacement, transport: naptrServices[strings.ToUpper(n.Service)].transport})
	}
	return out, nil
}

// srvNames are the SRV names to ask without NAPTR records (RFC 3263 4.1):
// for the transport the URI names, or for each one the proxy supports.
func (r *Resolver) srvNames(host string, sips bool, tp string) []service {
	all := []service{
		{"_sip._udp." + host, "UDP"},
		{"_sip._tcp." + host, "TCP"},
		{"_sips._tcp." + host, "TLS"},
	}
	var out []service
	for _, s := range all {
		switch {
		case tp != "" && s.transport != tp:
		case sips && s.transport != "TLS":
		case !r.supports(s.transport):
		default:
			out = append(out, s)
		}
	}
	return out
}

// srv returns the targets of the SRV records of s, in RFC 2782 order,
// with every address of each. ErrNotFound means there are no records; a
// record whose target is "." (the service is not offered there) gives
// none.
func (r *Resolver) srv(ctx context.Context, name string, s service) ([]Target, error) {
	rrs, err := r.lookup(ctx, s.name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var recs []*dns.SRV
	for _, rr := range rrs {
		if v, ok := rr.(*dns.SRV); ok && v.Target != "." {
			recs = append(recs, v)
		}
	}
	var out []Target
	for _, v := range orderSRV(recs, r.rand) {
		ts, err := r.addresses(ctx, nil, name, strings.TrimSuffix(v.Target, "."), v.Port, s.transport)
		if err != nil {
			continue
		}
		out = appendNew(out, ts)
	}
	return out, nil
}

// addresses appends a target for each address of host (the hosts file,
// then A and AAAA records: IPv4 first) on port and tp. name is the URI's
// host, which a TLS connection verifies.
func (r *Resolver) addresses(ctx context.Context, out []Target, name, host string, port uint16, tp string) ([]Target, error) {
	if ips, ok := r.hosts[strings.ToLower(host)]; ok {
		for _, ip := range ips {
			out = append(out, Target{Addr: netip.AddrPortFrom(ip, port), Transport: tp, Name: name, Host: host})
		}
		return out, nil
	}
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.lookup(ctx, host, qtype)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			var ip netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(v.AAAA.To16())
			}
			if ip.IsValid() {
				out = append(out, Target{Addr: netip.AddrPortFrom(ip.Unmap(), port), Transport: tp, Name: name, Host: host})
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, err := range errs {
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: %s has no address", ErrNotFound, host)
}

// orderSRV sorts records by priority and, within one priority, in
// weighted random order (RFC 2782): each next record is drawn with a
// chance proportional to its weight among those left. Records of weight
// 0 come after the others of their priority, in random order: RFC 2782
// gives them "a very small chance" of being chosen first.
func orderSRV(recs []*dns.SRV, randn func(int) int) []*dns.SRV {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) })
	for start := 0; start < len(recs); {
		end := start
		for end < len(recs) && recs[end].Priority == recs[start].Priority {
			end++
		}
		shuffleByWeight(recs[start:end], randn)
		start = end
	}
	return recs
}

func shuffleByWeight(recs []*dns.SRV, randn func(int) int) {
	sum := 0
	for _, v := range recs {
		sum += int(v.Weight)
	}
	for i := range recs {
		if sum == 0 {
			j := i + randn(len(recs)-i)
			recs[i], recs[j] = recs[j], recs[i]
			continue
		}
		s := randn(sum)
		for j := i; j < len(recs); j++ {
			s -= int(recs[j].Weight)
			if s < 0 {
				recs[i], recs[j] = recs[j], recs[i]
				sum -= int(recs[i].Weight)
				break
			}
		}
	}
}
