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
	tests := []struct {
		keys, transport string
		want            string // the binding's first Path entry, "" for none
	}{
		{"path = true", "TCP", "<sip:127.0.0.1:5060;transport=tcp;lr>"},
		{"path = true", "UDP", ""},
		{"", "TCP", ""},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "registrar", tc.keys, stagetest.WithTransport(tc.transport))
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
