package resolve_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/resolve"
	"github.com/switchboard-sip/switchboard/pipeline/resolve/resolvetest"
)

// zone is served to the tests: example.test has NAPTR, SRV (two
// priorities, the first with two targets) and addresses; srv.test has SRV
// records only; plain.test addresses only.
var zone = []string{
	`example.test. 60 IN NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.example.test.`,
	`example.test. 60 IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.example.test.`,
	`example.test. 60 IN NAPTR 5 50 "s" "SIP+D2S" "" _sip._sctp.example.test.`,
	`example.test. 60 IN NAPTR 30 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.`,
	`_sip._tcp.example.test. 60 IN SRV 10 100 5070 a.example.test.`,
	`_sip._udp.example.test. 60 IN SRV 10 100 5080 a.example.test.`,
	`_sips._tcp.example.test. 60 IN SRV 10 100 5071 a.example.test.`,
	`a.example.test. 60 IN A 127.0.0.11`,
	`a.example.test. 60 IN AAAA ::1`,
	`_sip._udp.srv.test. 60 IN SRV 10 1 5061 one.srv.test.`,
	`_sip._udp.srv.test. 60 IN SRV 10 1 5062 two.srv.test.`,
	`_sip._udp.srv.test. 60 IN SRV 20 1 5063 three.srv.test.`,
	`_sip._udp.srv.test. 60 IN SRV 30 1 5064 gone.srv.test.`,
	`_sips._tcp.srv.test. 60 IN SRV 10 1 5065 one.srv.test.`,
	`one.srv.test. 60 IN A 127.0.0.21`,
	`two.srv.test. 60 IN A 127.0.0.22`,
	`three.srv.test. 60 IN A 127.0.0.23`,
	`three.srv.test. 60 IN A 127.0.0.24`,
	`plain.test. 60 IN A 127.0.0.31`,
}

func newResolver(t *testing.T, srv *resolvetest.Server, now func() time.Time) *resolve.Resolver {
	t.Helper()
	r, err := resolve.New(resolve.Config{Servers: []string{srv.Addr}, Hosts: "-", Timeout: time.Second, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func uri(t *testing.T, s string) *sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatal(err)
	}
	return &u
}

func targets(ts []resolve.Target) string {
	var b []string
	for _, t := range ts {
		b = append(b, t.String())
	}
	return strings.Join(b, " ")
}

func TestResolve(t *testing.T) {
	srv := resolvetest.Start(t, zone...)
	r := newResolver(t, srv, nil)
	tests := []struct {
		uri  string
		want string // targets in order; one of several orders with "|"
		err  error
	}{
		// NAPTR: TCP (order 10), then UDP (20), then TLS (30); SCTP skipped.
		{"sip:alice@example.test", "tcp:127.0.0.11:5070 tcp:[::1]:5070 udp:127.0.0.11:5080 udp:[::1]:5080 tls:127.0.0.11:5071 tls:[::1]:5071", nil},
		// sips: only the SIPS service.
		{"sips:alice@example.test", "tls:127.0.0.11:5071 tls:[::1]:5071", nil},
		// A transport parameter: that transport's SRV, no NAPTR.
		{"sip:alice@example.test;transport=udp", "udp:127.0.0.11:5080 udp:[::1]:5080", nil},
		// A port: addresses only.
		{"sip:alice@a.example.test:5099", "udp:127.0.0.11:5099 udp:[::1]:5099", nil},
		{"sip:alice@a.example.test:5099;transport=tcp", "tcp:127.0.0.11:5099 tcp:[::1]:5099", nil},
		// No NAPTR: every SRV target by priority (one and two at 10 in
		// either order), every address of each; gone.srv.test has none.
		{"sip:bob@srv.test", "udp:127.0.0.21:5061 udp:127.0.0.22:5062 udp:127.0.0.23:5063 udp:127.0.0.24:5063 tls:127.0.0.21:5065|udp:127.0.0.22:5062 udp:127.0.0.21:5061 udp:127.0.0.23:5063 udp:127.0.0.24:5063 tls:127.0.0.21:5065", nil},
		// No NAPTR, no SRV: addresses on the default port.
		{"sip:carol@plain.test", "udp:127.0.0.31:5060", nil},
		{"sips:carol@plain.test", "tls:127.0.0.31:5061", nil},
		// Numeric hosts, as they are.
		{"sip:127.0.0.9", "udp:127.0.0.9:5060", nil},
		{"sips:[::1]:5999", "tls:[::1]:5999", nil},
		{"sip:10.0.0.1;transport=tcp", "tcp:10.0.0.1:5060", nil},
		// No such name.
		{"sip:dave@nowhere.test", "", resolve.ErrNotFound},
		{"sip:dave@nowhere.test:5060", "", resolve.ErrNotFound},
	}
	for i, tc := range tests {
		got, err := r.Resolve(context.Background(), uri(t, tc.uri))
		if !errors.Is(err, tc.err) {
			t.Errorf("test %d (%s): error %v, want %v", i, tc.uri, err, tc.err)
			continue
		}
		ok := false
		for _, want := range strings.Split(tc.want, "|") {
			ok = ok || targets(got) == want
		}
		if !ok {
			t.Errorf("test %d (%s): targets\n  %s\nwant\n  %s", i, tc.uri, targets(got), tc.want)
		}
	}
}

// TestResolveName checks that every target of a name carries the name for
// TLS to verify, not the SRV target's.
func TestResolveName(t *testing.T) {
	srv := resolvetest.Start(t, zone...)
	r := newResolver(t, srv, nil)
	got, err := r.Resolve(context.Background(), uri(t, "sips:bob@srv.test"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "srv.test" || got[0].Host != "one.srv.test" {
		t.Errorf("targets %+v, want one with Name srv.test and Host one.srv.test", got)
	}
}

func TestResolveSupports(t *testing.T) {
	srv := resolvetest.Start(t, zone...)
	r, err := resolve.New(resolve.Config{Servers: []string{srv.Addr}, Hosts: "-", Supports: func(tp string) bool { return tp == "UDP" }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Resolve(context.Background(), uri(t, "sip:alice@example.test"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "udp:127.0.0.11:5080 udp:[::1]:5080"; targets(got) != want {
		t.Errorf("targets %s, want %s", targets(got), want)
	}
}

// TestResolveTTL checks that an answer is kept for its TTL, and a changed
// record is seen once it expired.
func TestResolveTTL(t *testing.T) {
	srv := resolvetest.Start(t, zone...)
	now := time.Unix(1e9, 0)
	r := newResolver(t, srv, func() time.Time { return now })
	resolveTo := func(want string) {
		t.Helper()
		got, err := r.Resolve(context.Background(), uri(t, "sip:carol@plain.test"))
		if err != nil {
			t.Fatal(err)
		}
		if targets(got) != want {
			t.Fatalf("at %s: targets %s, want %s", now.Format(time.TimeOnly), targets(got), want)
		}
	}
	resolveTo("udp:127.0.0.31:5060")
	queries := srv.Queries()
	srv.Set(t, "plain.test. 60 IN A 127.0.0.32")
	// Within the SOA minimum (30 s) nothing is asked again: neither the A
	// record nor the NAPTR, SRV and AAAA records that are not there.
	now = now.Add(29 * time.Second)
	resolveTo("udp:127.0.0.31:5060")
	if n := srv.Queries(); n != queries {
		t.Errorf("%d queries within the TTLs, want none", n-queries)
	}
	now = now.Add(30 * time.Second)
	resolveTo("udp:127.0.0.31:5060")
	now = now.Add(time.Second)
	resolveTo("udp:127.0.0.32:5060")
}

// TestResolveNegative checks that "no such name" is kept by the SOA's
// minimum (30 s), and that a name added is found after it.
func TestResolveNegative(t *testing.T) {
	srv := resolvetest.Start(t, zone...)
	now := time.Unix(1e9, 0)
	r := newResolver(t, srv, func() time.Time { return now })
	u := uri(t, "sip:erin@new.test")
	if _, err := r.Resolve(context.Background(), u); !errors.Is(err, resolve.ErrNotFound) {
		t.Fatalf("error %v, want ErrNotFound", err)
	}
	queries := srv.Queries()
	srv.Set(t, "new.test. 60 IN A 127.0.0.41")
	now = now.Add(29 * time.Second)
	if _, err := r.Resolve(context.Background(), u); !errors.Is(err, resolve.ErrNotFound) {
		t.Fatalf("within the negative TTL: error %v, want ErrNotFound (cached)", err)
	}
	if n := srv.Queries(); n != queries {
		t.Errorf("%d queries within the negative TTL, want none", n-queries)
	}
	now = now.Add(time.Second)
	got, err := r.Resolve(context.Background(), u)
	if err != nil || targets(got) != "udp:127.0.0.41:5060" {
		t.Fatalf("after the negative TTL: targets %s, error %v; want udp:127.0.0.41:5060", targets(got), err)
	}
}

// TestResolveUnreachable checks that a server that does not answer gives
// ErrUnreachable, not ErrNotFound.
func TestResolveUnreachable(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0") // reads nothing
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r, err := resolve.New(resolve.Config{Servers: []string{pc.LocalAddr().String()}, Hosts: "-", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), uri(t, "sip:x@plain.test")); !errors.Is(err, resolve.ErrUnreachable) {
		t.Errorf("error %v, want ErrUnreachable", err)
	}
}

func TestServerAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1:53"},
		{"127.0.0.1:5353", "127.0.0.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
		{"dns.example.com", ""},
	}
	for i, tc := range tests {
		got, err := resolve.ServerAddr(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("test %d: ServerAddr(%q) = %q, %v; want %q", i, tc.in, got, err, tc.want)
		}
	}
}
