package recordroute

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func TestRecordRoute(t *testing.T) {
	tests := []struct {
		keys string
		want bool
	}{
		{"", true},
		{`when = 'request.method == "INVITE"'`, true},
		{`when = 'request.method == "SUBSCRIBE"'`, false},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "record_route", tc.keys)
		res := h.Request(stagetest.Request(t, `INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1
To: <sip:bob@example.org>
Call-ID: c1
CSeq: 1 INVITE
Contact: <sip:alice@192.0.2.10>
`))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if res.RecordRoute != tc.want {
			t.Errorf("test %d: RecordRoute = %v, want %v", i, res.RecordRoute, tc.want)
		}
	}
}
