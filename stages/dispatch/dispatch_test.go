package dispatch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/prefixes"
)

// TestSetFromPrefixes: a dispatch stage without set sends a request to the
// set the prefixes stage picked, and leaves alone one for which it picked
// none.
func TestSetFromPrefixes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "routes.csv"), []byte("prefix,set\n0,pstn\n09,mobile\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := stagetest.Chain(t, `
[[set]]
name = "pstn"
[set.check]
interval = "0s"
[[set.destination]]
uri = "sip:127.0.0.1:5081"

[[set]]
name = "mobile"
[set.check]
interval = "0s"
[[set.destination]]
uri = "sip:127.0.0.1:5082"

[[stage]]
use  = "prefixes"
file = "routes.csv"

[[stage]]
use = "dispatch"
`, stagetest.WithConfigPath(filepath.Join(dir, "test.toml")))
	tests := []struct {
		user, want string
	}{
		{"0212345678", "127.0.0.1:5081"},
		{"0903123456", "127.0.0.1:5082"},
		{"alice", ""},
	}
	for _, tc := range tests {
		req := stagetest.Request(t, "INVITE sip:"+tc.user+"@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"+
			"From: <sip:bob@example.org>;tag=1\r\nTo: <sip:"+tc.user+"@example.org>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
		res := h.Request(req)
		if res.Err != nil || res.Verdict != pipeline.Continue {
			t.Errorf("%s: verdict %v, error %v", tc.user, res.Verdict, res.Err)
			continue
		}
		got := ""
		if len(res.Targets) > 0 {
			got = res.Targets[0].URI.HostPort()
		}
		if got != tc.want {
			t.Errorf("%s: target %q, want %q", tc.user, got, tc.want)
		}
	}
}

// TestNoSetNoSets: without set, the config must declare sets to choose from.
func TestNoSetNoSets(t *testing.T) {
	_, err := stagetest.BuildStage(t, "dispatch", "")
	if err == nil {
		t.Fatal("a dispatch stage with no set and no [[set]] built")
	}
}
