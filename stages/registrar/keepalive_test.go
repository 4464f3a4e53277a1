package registrar

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestBehindNAT checks which bindings are pinged: those registered over
// UDP straight from the phone whose Contact or Via names another address
// than the REGISTER's source.
func TestBehindNAT(t *testing.T) {
	const src = "203.0.113.5:40000"
	tests := []struct {
		name, contact, via, transport string
		path                          bool
		src                           string
		want                          bool
	}{
		{"private Contact and Via", "sip:a@10.0.0.5:5060", "10.0.0.5:5060", "UDP", false, src, true},
		{"the Contact is the source", "sip:a@203.0.113.5:40000", "203.0.113.5:40000", "UDP", false, src, false},
		{"default port", "sip:a@203.0.113.5", "203.0.113.5", "UDP", false, "203.0.113.5:5060", false},
		{"another port (a NAT that keeps the address)", "sip:a@203.0.113.5:5060", "203.0.113.5:5060", "UDP", false, src, true},
		{"the Via alone differs", "sip:a@203.0.113.5:40000", "10.0.0.5:5060", "UDP", false, src, true},
		{"a host name", "sip:a@phone.example.com", "203.0.113.5:40000", "UDP", false, src, true},
		{"TCP", "sip:a@10.0.0.5:5060", "10.0.0.5:5060", "TCP", false, src, false},
		{"relayed: a Path", "sip:a@10.0.0.5:5060", "10.0.0.5:5060", "UDP", true, src, false},
		{"IPv6", "sip:a@[2001:db8::5]:5060", "[2001:db8::5]:5060", "UDP", false, "[2001:db8::5]:5060", false},
	}
	for i, tc := range tests {
		raw := "REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/" + tc.transport + " " + tc.via + ";branch=z9hG4bK1\r\n" +
			"From: <sip:a@example.org>;tag=1\r\nTo: <sip:a@example.org>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <" + tc.contact + ">\r\n"
		if tc.path {
			raw += "Path: <sip:edge.example.net;lr>\r\n"
		}
		req := stagetest.Request(t, raw+"Content-Length: 0\r\n\r\n")
		ap := netip.MustParseAddrPort(tc.src)
		ctx := pipeline.NewContext(nil, req, pipeline.Source{IP: ap.Addr(), Port: int(ap.Port())}, tc.transport)
		if got := behindNAT(ctx, location.Binding{Contact: tc.contact}); got != tc.want {
			t.Errorf("test %d (%s): behindNAT %v, want %v", i, tc.name, got, tc.want)
		}
	}
}

func TestLocalSocket(t *testing.T) {
	req := stagetest.Request(t, "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n")
	if got := localSocket(req); got.IsValid() {
		t.Errorf("no Laddr: %v", got)
	}
	req.Laddr = sip.Addr{IP: netip.MustParseAddr("::ffff:127.0.0.1").AsSlice(), Port: 5060}
	if got := localSocket(req); got.String() != "127.0.0.1:5060" {
		t.Errorf("Laddr %v: %v", req.Laddr, got)
	}
}
