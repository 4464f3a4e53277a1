package forward_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

func TestForward(t *testing.T) {
	tests := []struct {
		keys         string
		err          string
		fr, invC, fo time.Duration
	}{
		{keys: "", fr: 30 * time.Second, invC: 180 * time.Second, fo: 4 * time.Second},
		{keys: `fr_timeout = "5s"` + "\n" + `invite_timeout = "1m"`, fr: 5 * time.Second, invC: time.Minute, fo: 4 * time.Second},
		{keys: `failover_timeout = "2s"`, fr: 30 * time.Second, invC: 180 * time.Second, fo: 2 * time.Second},
		{keys: `failover_timeout = "10ms"`, err: "stage 1 (forward): failover_timeout: 10ms is under 100ms"},
		{keys: `fr_timeout = "500ms"`, err: "stage 1 (forward): fr_timeout: 500ms is under 1s"},
		{keys: `invite_timeout = "0s"`, err: "stage 1 (forward): invite_timeout: 0s is under 1s"},
		{keys: `fr_timeout = "soon"`, err: "stage 1 (forward): fr_timeout:"},
		{keys: `timeout = "5s"`, err: "stage 1 (forward): timeout: unknown key"},
	}
	for i, tc := range tests {
		h, err := stagetest.BuildStage(t, "forward", tc.keys)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("test %d: error %v, want %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		res := h.Request(stagetest.Request(t, `OPTIONS sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1
To: <sip:bob@example.org>
Call-ID: c1
CSeq: 1 OPTIONS
`))
		if res.Verdict != pipeline.Forwarded {
			t.Errorf("test %d: verdict %s", i, res.Verdict)
		}
		if res.Forward.ProvisionalTimeout != tc.fr || res.Forward.InviteTimeout != tc.invC || res.Forward.FailoverTimeout != tc.fo {
			t.Errorf("test %d: timers %+v", i, res.Forward)
		}
	}
}

func TestTerminal(t *testing.T) {
	_, err := stagetest.Build(t, "[[stage]]\nuse = 'forward'\n[[stage]]\nuse = 'location'")
	if err == nil || !strings.Contains(err.Error(), "stage 1 (forward): is terminal") {
		t.Errorf("error %v", err)
	}
}
