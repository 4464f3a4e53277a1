package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// natRequest is a REGISTER with the given Via and Contact lines (and any
// more header lines), as received.
func natRequest(t *testing.T, lines ...string) *sip.Request {
	t.Helper()
	raw := "REGISTER sip:example.org SIP/2.0\r\n" + strings.Join(lines, "\r\n") + "\r\n" +
		"From: <sip:bob@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: nat\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

func TestDetectNAT(t *testing.T) {
	src := Source{IP: netip.MustParseAddr("203.0.113.2"), Port: 40000}
	tests := []struct {
		transport string
		lines     []string
		behind    bool
		reason    string // the start of the verdict's reason
	}{
		// A phone behind a home router: its private address in both.
		{"UDP", []string{"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;rport", "Contact: <sip:bob@192.168.1.20:5060>"}, true, "Via 192.168.1.20:5060"},
		// STUN found the public address, but not the port the router chose.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK1;rport", "Contact: <sip:bob@203.0.113.2:5060>"}, true, "Via 203.0.113.2:5060"},
		// Only the Contact is private.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: <sip:bob@10.0.0.5>"}, true, "Contact 10.0.0.5"},
		// The second Contact is private.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: <sip:bob@203.0.113.2:40000>", "Contact: <sip:bob@10.0.0.5:5062>"}, true, "Contact 10.0.0.5:5062"},
		// A Contact at another public address, or another port, is another
		// device's (a third-party registration, an alias): no verdict.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: <sip:bob@198.51.100.9:5060>"}, false, "Via and Contact"},
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: <sip:bob@203.0.113.2:5060>"}, false, "Via and Contact"},
		// Behind a carrier-grade NAT (RFC 6598).
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: <sip:bob@100.64.7.9:5060>"}, true, "Contact 100.64.7.9:5060"},
		// A phone on a public address: no NAT, rport or not.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1;rport", "Contact: <sip:bob@203.0.113.2:40000>"}, false, "Via and Contact name the source"},
		// No port: 5060 is not the source's 40000.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bK1", "Contact: <sip:bob@203.0.113.2:40000>"}, true, "Via 203.0.113.2 "},
		// Host names are not compared.
		{"UDP", []string{"Via: SIP/2.0/UDP phone.example.org;branch=z9hG4bK1", "Contact: <sip:bob@phone.example.org>"}, false, "Via and Contact"},
		// Over a stream the source port is the connection's: only the IP counts.
		{"TCP", []string{"Via: SIP/2.0/TCP 203.0.113.2:5060;branch=z9hG4bK1", "Contact: <sip:bob@203.0.113.2:5060;transport=tcp>"}, false, "Via and Contact"},
		{"TCP", []string{"Via: SIP/2.0/TCP 192.168.1.20:5060;branch=z9hG4bK1", "Contact: <sip:bob@192.168.1.20:5060;transport=tcp>"}, true, "Via 192.168.1.20:5060"},
		// Relayed by another proxy: its source is that proxy.
		{"UDP", []string{"Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK2", "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1", "Contact: <sip:bob@192.168.1.20:5060>"}, false, "relayed: more than one Via"},
		{"UDP", []string{"Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK2, SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1", "Contact: <sip:bob@192.168.1.20:5060>"}, false, "relayed: more than one Via"},
		{"UDP", []string{"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1", "Path: <sip:198.51.100.1;lr>", "Contact: <sip:bob@192.168.1.20:5060>"}, false, "relayed: Path"},
		// Contact: * (unregister all) names no address.
		{"UDP", []string{"Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: *", "Expires: 0"}, false, "Via and Contact"},
		// IPv6, the source an IPv4-mapped address of the same host.
		{"UDP", []string{"Via: SIP/2.0/UDP [2001:db8::1]:40000;branch=z9hG4bK1", "Contact: <sip:bob@[2001:db8::1]:40000>"}, true, "Via [2001:db8::1]:40000"},
	}
	for i, tc := range tests {
		got := DetectNAT(natRequest(t, tc.lines...), src, tc.transport)
		if got.Behind != tc.behind || !strings.HasPrefix(got.Reason, tc.reason) {
			t.Errorf("test %d: %+v, want behind %v and a reason starting %q", i, got, tc.behind, tc.reason)
		}
	}
	mapped := Source{IP: netip.MustParseAddr("::ffff:203.0.113.2"), Port: 40000}
	req := natRequest(t, "Via: SIP/2.0/UDP 203.0.113.2:40000;branch=z9hG4bK1", "Contact: <sip:bob@203.0.113.2:40000>")
	if got := DetectNAT(req, mapped, "UDP"); got.Behind {
		t.Errorf("an IPv4-mapped source: %+v, want no NAT", got)
	}
	if got := DetectNAT(req, Source{}, "UDP"); got.Behind {
		t.Errorf("no source: %+v, want no NAT", got)
	}
}
