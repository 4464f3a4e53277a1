package main

// The SIPp scenarios of examples/sipp checked without a proxy: each caller
// scenario against its callee scenario (or a small responder written here),
// SIPp to SIPp. This proves the scenarios load and play in SIPp, so that a
// failure of an end-to-end test is the proxy's, not a scenario's. It needs
// sipp, not the switchboard binary.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// responders are callee scenarios for the callers whose real counterpart is
// the proxy itself (a registrar, a 404, a 483).
var responders = map[string]string{
	"registrar.xml": `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="test registrar">
  <recv request="REGISTER"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]reg[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=3600
      Content-Length: 0

    ]]>
  </send>
</scenario>
`,
	"invite_404.xml": finalResponder("INVITE", "404 Not Found", true),
	"invite_483.xml": finalResponder("INVITE", "483 Too Many Hops", true),
	"bye_404.xml":    finalResponder("BYE", "404 Not Found", false),
}

func finalResponder(method, status string, ack bool) string {
	s := `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="test responder">
  <recv request="` + method + `"/>
  <send>
    <![CDATA[

      SIP/2.0 ` + status + `
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]r[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
`
	if ack {
		s += "  <recv request=\"ACK\"/>\n"
	}
	return s + "</scenario>\n"
}

// direct is a callee scenario and a caller scenario (paths) played SIPp to
// SIPp, with no proxy.
type direct struct {
	name       string
	callee     string
	calleeArgs []string
	caller     string
	callerArgs []string
}

// play starts the callee, then the caller towards it, each with extra and
// its own arguments.
func (d direct) play(t *testing.T, extra ...string) (caller, callee *sippRun) {
	t.Helper()
	args := append(append([]string{"-sf", d.callee, "-i", calleeIP}, extra...), d.calleeArgs...)
	callee = runSipp(t, args...)
	waitListening(t, callee)
	args = append(append([]string{callee.Addr(), "-sf", d.caller, "-i", callerIP}, extra...), d.callerArgs...)
	return runSipp(t, args...), callee
}

// scenarioDir writes the responders and the variants into a temporary
// directory, and returns a function that finds a scenario by name there or
// in examples/sipp.
func scenarioDir(t *testing.T, variants map[string]string) func(name string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range responders {
		variants[name] = text
	}
	for name, text := range variants {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func(name string) string {
		if _, ok := variants[name]; ok {
			return filepath.Join(dir, name)
		}
		return scenario(t, name)
	}
}

// variant returns the text of an examples/sipp scenario with old replaced by
// new, once.
func variant(t *testing.T, name, old, new string) string {
	t.Helper()
	data, err := os.ReadFile(scenario(t, name))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), old, new, 1)
	if text == string(data) {
		t.Fatalf("%s: no %q to replace", name, old)
	}
	return text
}

func TestScenariosSippToSipp(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	path := scenarioDir(t, map[string]string{
		// uas_fork_cancelled.xml wants the Reason a forking proxy adds to
		// its CANCEL: a caller that cancels with it.
		"uac_cancel_reason.xml": variant(t, "uac_cancel.xml", "      CSeq: 1 CANCEL\n",
			"      CSeq: 1 CANCEL\n      Reason: SIP;cause=200;text=\"Call completed elsewhere\"\n"),
	})
	tests := []direct{
		{"call", "uas.xml", nil, "uac.xml", []string{"-d", "100"}},
		{"call over tcp", "uas.xml", []string{"-t", "t1"}, "uac.xml", []string{"-t", "t1", "-d", "100"}},
		{"register", "registrar.xml", nil, "register.xml", []string{"-s", "alice", "-key", "contact_port", "5062"}},
		{"register tcp contact", "registrar.xml", nil, "register.xml",
			[]string{"-s", "alice", "-key", "contact_port", "5062", "-set", "contact_params", ";transport=tcp"}},
		{"cancel", "uas_ring.xml", nil, "uac_cancel.xml", []string{"-d", "100"}},
		{"decline", "uas_reject.xml", []string{"-key", "reject_code", "603"}, "uac_reject.xml", []string{"-key", "reject_code", "603"}},
		{"busy", "uas_reject.xml", []string{"-key", "reject_code", "486"}, "uac_reject.xml", []string{"-key", "reject_code", "486"}},
		{"redirect", "uas_redirect.xml", []string{"-key", "redirect_to", "sip:carol@127.0.0.3:5064"}, "uac_reject.xml", []string{"-key", "reject_code", "302"}},
		{"register with q", "registrar.xml", nil, "register.xml",
			[]string{"-s", "alice", "-key", "contact_port", "5062", "-set", "contact_header_params", ";q=0.5"}},
		{"404", "invite_404.xml", nil, "uac_404.xml", nil},
		{"forged bye", "bye_404.xml", nil, "uac_forged.xml", nil},
		{"max-forwards 0", "invite_483.xml", nil, "uac_maxfwd0.xml", nil},
		{"fork answer", "uas_fork_answer.xml", nil, "uac.xml", []string{"-d", "100"}},
		{"fork cancelled", "uas_fork_cancelled.xml", nil, "uac_cancel_reason.xml", []string{"-d", "100"}},
		{"reinvite", "uas_reinvite.xml", []string{"-d", "100"}, "uac_reinvited.xml", nil},
		{"big sdp", "uas_bigsdp.xml", nil, "uac_bigsdp.xml", []string{"-d", "100"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.callee, tc.caller = path(tc.callee), path(tc.caller)
			caller, callee := tc.play(t)
			caller.ExpectCalls(1)
			callee.ExpectCalls(1)
		})
	}
}

// TestScenarioChecksFail proves that the checks of the scenarios fail a
// call: an ACK that keeps a Route header, an ACK sent to another
// Request-URI, a rejection with another code, a CANCEL without the Reason.
func TestScenarioChecksFail(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	path := scenarioDir(t, map[string]string{
		"route_left.xml":   variant(t, "uac.xml", "      [routes]\n", "      Route: <sip:127.0.0.1:5060;lr>\n"),
		"strict_route.xml": variant(t, "uac.xml", "ACK [next_url] SIP/2.0", "ACK sip:127.0.0.1:5060;lr SIP/2.0"),
	})
	tests := []struct {
		direct
		// callerFails: the caller's call must fail; else the callee's.
		callerFails bool
	}{
		{direct{"route left in ACK", "uas.xml", nil, "route_left.xml", []string{"-d", "100"}}, false},
		{direct{"ACK to the proxy", "uas.xml", nil, "strict_route.xml", []string{"-d", "100"}}, false},
		{direct{"other rejection", "uas_reject.xml", []string{"-key", "reject_code", "486"},
			"uac_reject.xml", []string{"-key", "reject_code", "603"}}, true},
		{direct{"CANCEL without Reason", "uas_fork_cancelled.xml", nil, "uac_cancel.xml", []string{"-d", "100"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.callee, tc.caller = path(tc.callee), path(tc.caller)
			caller, callee := tc.play(t, "-timeout", "10s")
			caller.Wait()
			callee.Wait()
			failing := callee
			if tc.callerFails {
				failing = caller
			}
			stats, err := failing.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if code := failing.Wait(); code != 1 || stats.Failed != 1 {
				t.Errorf("sipp %s: exit code %d with %d failed calls, want exit code 1 and 1 failed call\n%s",
					failing.label, code, stats.Failed, failing.Report())
			}
		})
	}
}
