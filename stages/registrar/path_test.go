package registrar

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func TestPath(t *testing.T) {
	const register = `REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/TCP 192.0.2.10:5070;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:bob@example.org>;tag=1
To: <sip:bob@example.org>
Call-ID: reg-1
CSeq: 1 REGISTER
Contact: <sip:bob@192.0.2.10:5070;transport=tcp>
Expires: 3600
`
	const own = "<sip:127.0.0.1:5060;transport=tcp;lr>"
	tests := []struct {
		keys, transport string
		source          string // where the REGISTER came from; its Via says 192.0.2.10:5070
		want            string // the binding's first Path entry, "" for none
	}{
		{"path = true", "TCP", "192.0.2.10:40001", own},
		{"path = true", "TLS", "192.0.2.10:40001", own},
		{"path = true", "WSS", "192.0.2.10:40001", own},
		{"path = true", "UDP", "192.0.2.10:5070", ""},
		// From behind NAT: only this instance reaches the mapping.
		{"path = true", "UDP", "203.0.113.2:40000", own},
		{"path = true\nnat = false", "UDP", "203.0.113.2:40000", ""},
		{"", "TCP", "192.0.2.10:40001", ""},
		{"", "UDP", "203.0.113.2:40000", ""},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "registrar", tc.keys, stagetest.WithTransport(tc.transport), stagetest.WithSource(tc.source))
		res := h.Request(stagetest.Request(t, register))
		if res.Code() != 200 {
			t.Fatalf("test %d: %d %s", i, res.Code(), res.Reason())
		}
		if strings.Contains(res.Reply.String(), "Path:") {
			t.Errorf("test %d: the 200 echoes a Path the REGISTER did not bring", i)
		}
		bs, _, err := h.Location().Lookup("bob", time.Now())
		if err != nil || len(bs) != 1 {
			t.Fatalf("test %d: %v %v", i, bs, err)
		}
		got := ""
		if len(bs[0].Path) > 0 {
			got = bs[0].Path[0]
		}
		if got != tc.want {
			t.Errorf("test %d: Path %q, want %q", i, got, tc.want)
		}
	}
}

// TestNAT checks the binding's NAT verdict: a REGISTER straight from a
// phone whose Contact or Via names another address than its source is
// from behind NAT, unless nat = false; the Contact is kept as sent.
func TestNAT(t *testing.T) {
	const register = `REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
From: <sip:bob@example.org>;tag=1
To: <sip:bob@example.org>
Call-ID: reg-1
CSeq: 1 REGISTER
Contact: <sip:bob@192.168.1.20:5060>
Expires: 3600
`
	relayed := strings.Replace(register, "Via: ", "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKrelay\nVia: ", 1)
	public := strings.ReplaceAll(register, "192.168.1.20:5060", "203.0.113.2:40000")
	const private = "sip:bob@192.168.1.20:5060"
	tests := []struct {
		keys, transport, register string
		want                      bool
		contact                   string // the binding's, as sent
	}{
		{"", "UDP", register, true, private},
		{"", "TCP", strings.ReplaceAll(register, "UDP", "TCP"), true, private},
		{"nat = false", "UDP", register, false, private},
		{"", "UDP", relayed, false, private},
		{"", "UDP", public, false, "sip:bob@203.0.113.2:40000"},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "registrar", tc.keys, stagetest.WithTransport(tc.transport), stagetest.WithSource("203.0.113.2:40000"))
		if res := h.Request(stagetest.Request(t, tc.register)); res.Code() != 200 {
			t.Fatalf("test %d: %d %s", i, res.Code(), res.Reason())
		}
		bs, _, err := h.Location().Lookup("bob", time.Now())
		if err != nil || len(bs) != 1 {
			t.Fatalf("test %d: %v %v", i, bs, err)
		}
		b := bs[0]
		if b.NAT != tc.want {
			t.Errorf("test %d: NAT %v, want %v", i, b.NAT, tc.want)
		}
		if b.Contact != tc.contact {
			t.Errorf("test %d: Contact %q, want %q as sent", i, b.Contact, tc.contact)
		}
		if b.Received != "203.0.113.2:40000" {
			t.Errorf("test %d: Received %q", i, b.Received)
		}
	}
}
