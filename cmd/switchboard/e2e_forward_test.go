package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallForward runs the proxy with the callforward stage in place of
// location, sets bob's forwarding with `switchboard ctl forward`, sees it
// in `ctl forwarding`, and calls bob with SIPp: the call reaches carol
// when bob is busy, rings too long, has no binding, or forwards every
// call; the call record names the forward and the branches tried.
// Loops, redirects and q-value order are in the engine's
// TestCoreCallForward.
func TestCallForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// bob is bob's scenario ("" for no binding) and its arguments.
		bob     string
		bobArgs []string
		forward []string
		want    string
	}{
		{name: "busy", bob: "uas_reject.xml", bobArgs: []string{"-key", "reject_code", "486"},
			forward: []string{"busy=carol"}, want: "carol"},
		{name: "no answer", bob: "uas_ring.xml",
			forward: []string{"no_answer=carol", "no_answer_after=1"}, want: "1s"},
		{name: "unavailable", forward: []string{"unavailable=carol"}, want: "carol"},
		{name: "unconditional", bob: "uas.xml", forward: []string{"unconditional=carol"}, want: "carol"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := strings.Replace(testConfig("use = \"calllog\"\ncdr_path = \"cdr.json\"\ncdr_format = \"json\""), "use = \"location\"", "use = \"callforward\"", 1)
			p := startProxy(t, cfg)
			var bob *sippRun
			if tc.bob != "" {
				bob = startPhone(t, tc.bob, calleeIP, "udp", tc.bobArgs...)
				registerPhone(t, p, "bob", bob)
			}
			carol := startPhone(t, "uas.xml", calleeIP, "udp")
			registerPhone(t, p, "carol", carol)
			mustContain(t, "ctl forward", ctlOK(t, p, append([]string{"forward", "bob"}, tc.forward...)...), "bob", tc.want)
			mustContain(t, "ctl forwarding", ctlOK(t, p, "forwarding"), "UNCONDITIONAL", "bob", tc.want)

			caller := callFrom(t, p, "uac.xml", "udp", "-s", "bob")
			caller.ExpectCalls(1)
			carol.ExpectCalls(1)
			switch {
			case tc.name == "unconditional":
				bob.expectNothingReceived()
			case bob != nil:
				bob.ExpectCalls(1)
			}
			if !p.logSays(`msg="call forwarded"`, 5e9) {
				t.Error("the log has no \"call forwarded\" line")
			}
			// The call's record says where it went.
			kind := strings.ReplaceAll(tc.name, " ", "_")
			cdrPath := filepath.Join(filepath.Dir(p.ConfigPath), "cdr.json")
			waitFile(t, cdrPath, `"forwarded_from":"bob"`)
			data, _ := os.ReadFile(cdrPath)
			cdr := string(data)
			mustContain(t, "cdr.json", cdr, `"forwards":[{"kind":"`+kind+`","from":"bob","to":"carol"}]`, `"attempts":[`, `"code":200}]`)

		})
	}
}
