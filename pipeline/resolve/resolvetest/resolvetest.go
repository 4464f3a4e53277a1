// Package resolvetest is a DNS server for tests: it serves the records it
// is given, on 127.0.0.1 at a port of the kernel's choosing, over UDP.
package resolvetest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server serves a zone of records; Set and Remove change it while it runs.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// SOA goes with every negative answer (RFC 2308); nil sends none.
	SOA *dns.SOA

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	queries atomic.Int64
}

// Start serves records (in zone file syntax, one a line, such as
// "_sip._udp.example.test. 60 IN SRV 10 50 5060 a.example.test.") until
// the test ends. Its negative answers carry an SOA with a minimum of 30 s.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}}
	soa, err := dns.NewRR("test. 30 IN SOA ns.test. admin.test. 1 60 60 60 30")
	if err != nil {
		t.Fatal(err)
	}
	s.SOA = soa.(*dns.SOA)
	s.Set(t, records...)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: s}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

// Set replaces the records of every name and type the given records have.
func (s *Server) Set(t testing.TB, records ...string) {
	t.Helper()
	rrs := make([]dns.RR, 0, len(records))
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		rrs = append(rrs, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cleared := map[string]bool{}
	for _, rr := range rrs {
		name := strings.ToLower(rr.Header().Name)
		k := name + "/" + dns.TypeToString[rr.Header().Rrtype]
		if !cleared[k] {
			cleared[k] = true
			s.records[name] = remove(s.records[name], rr.Header().Rrtype)
		}
		s.records[name] = append(s.records[name], rr)
	}
}

// Remove deletes the records of type qtype at name.
func (s *Server) Remove(name string, qtype uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = strings.ToLower(dns.Fqdn(name))
	s.records[name] = remove(s.records[name], qtype)
	if len(s.records[name]) == 0 {
		delete(s.records, name)
	}
}

// Queries is the number of queries served.
func (s *Server) Queries() int64 { return s.queries.Load() }

func remove(rrs []dns.RR, qtype uint16) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != qtype {
			out = append(out, rr)
		}
	}
	return out
}

// ServeDNS answers a query from the records: NXDOMAIN for a name with
// none, no data for a name with records of other types.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	res := new(dns.Msg)
	res.SetReply(q)
	res.Authoritative = true
	if len(q.Question) == 1 {
		question := q.Question[0]
		s.mu.Lock()
		rrs, known := s.records[strings.ToLower(question.Name)]
		for _, rr := range rrs {
			if rr.Header().Rrtype == question.Qtype {
				res.Answer = append(res.Answer, dns.Copy(rr))
			}
		}
		s.mu.Unlock()
		if !known {
			res.Rcode = dns.RcodeNameError
		}
		if len(res.Answer) == 0 && s.SOA != nil {
			res.Ns = append(res.Ns, dns.Copy(s.SOA))
		}
	}
	_ = w.WriteMsg(res)
}
