package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOptionsToProxy: an OPTIONS addressed to the proxy itself gets 200
// with Allow.
func TestOptionsToProxy(t *testing.T) {
	t.Parallel()
	p := startProxy(t, testConfig())
	runSipp(t, p.UDP, "-sf", scenario(t, "options.xml"), "-i", callerIP).ExpectCalls(1)
}

// TestMessageRelayed: a MESSAGE to a registered user reaches its Contact.
func TestMessageRelayed(t *testing.T) {
	t.Parallel()
	p := startProxy(t, testConfig())
	callee := startPhone(t, "uas_message.xml", calleeIP, "udp")
	registerPhone(t, p, "bob", callee)
	callFrom(t, p, "uac_message.xml", "udp", "-s", "bob").ExpectCalls(1)
	callee.ExpectCalls(1)
}

// TestDoubleRecordRoute: a call from a UDP phone to a TCP phone crosses
// transports, so the proxy records two routes, one per transport; the ACK
// and BYE then cross back through both, and the callee sees no Route of
// ours left.
func TestDoubleRecordRoute(t *testing.T) {
	t.Parallel()
	p := startProxy(t, testConfig())
	callee := startPhone(t, "uas.xml", calleeIP, "tcp")
	registerPhone(t, p, "bob", callee)
	callFrom(t, p, "uac.xml", "udp", "-s", "bob").ExpectCalls(1)
	callee.ExpectCalls(1)

	invites := callee.Received("INVITE ")
	if len(invites) == 0 {
		t.Fatalf("the callee received no INVITE\n%s", callee.Report())
	}
	var routes []string
	for _, h := range invites[0].Headers("Record-Route") {
		for _, r := range strings.Split(h, ",") {
			routes = append(routes, strings.TrimSpace(r))
		}
	}
	if len(routes) != 2 || !strings.Contains(routes[0], "transport=tcp") || !strings.Contains(routes[1], "transport=udp") {
		t.Errorf("Record-Route %q, want the TCP side on top of the UDP side", routes)
	}
}

// TestInviteTimeout: a callee that rings and never answers is cancelled
// when Timer C (invite_timeout) runs out, and the caller gets 480.
func TestInviteTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, strings.Replace(testConfig(), "use = \"forward\"", "use = \"forward\"\ninvite_timeout = \"1s\"", 1))
	callee := startPhone(t, "uas_ring.xml", calleeIP, "udp")
	registerPhone(t, p, "bob", callee)
	callFrom(t, p, "uac_reject.xml", "udp", "-s", "bob", "-key", "reject_code", "480").ExpectCalls(1)
	callee.ExpectCalls(1) // it received the proxy's CANCEL
}

// TestDrain: on SIGTERM the proxy refuses new calls with 503 and
// Retry-After while the call being set up finishes, then exits 0.
func TestDrain(t *testing.T) {
	t.Parallel()
	p := startProxy(t, testConfig())
	callee := startPhone(t, "uas.xml", calleeIP, "udp", "-d", "1500")
	registerPhone(t, p, "bob", callee)
	first := callFrom(t, p, "uac.xml", "udp", "-s", "bob")
	deadline := time.Now().Add(10 * time.Second)
	for len(callee.Received("INVITE ")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the callee got no INVITE\n%s", callee.Report())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.killed = true // the exit below is expected
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	second := runSipp(t, p.UDP, "-sf", scenario(t, "uac_reject.xml"), "-i", callee2IP, "-s", "bob", "-key", "reject_code", "503")
	second.ExpectCalls(1)
	if res := second.Received("SIP/2.0 503"); len(res) == 0 || res[0].Header("Retry-After") == "" {
		t.Errorf("the 503 has no Retry-After\n%s", second.Report())
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatal("the proxy did not exit after draining")
	}
	if p.waitErr != nil {
		t.Errorf("the proxy exited with %v", p.waitErr)
	}
	first.Stop()
	if len(first.Received("SIP/2.0 200")) == 0 {
		t.Errorf("the call in progress got no 200 before the proxy stopped\n%s", first.Report())
	}
}

// TestTrace: with [log] trace and trace_messages on and limited by a rule
// to one user's calls, the log shows each stage's decision and the whole
// messages of those calls, and nothing of the others.
func TestTrace(t *testing.T) {
	t.Parallel()
	config := strings.Replace(testConfig("use = \"rewrite\"\nwhen = 'response.code == 200'\nreason = \"OK THANKS\""), "[log]\n", "[log]\ntrace = true\ntrace_messages = true\ntrace_when = 'to.user == \"bob\"'\n", 1)
	p := startProxy(t, config)
	bob := startPhone(t, "uas.xml", calleeIP, "udp")
	registerPhone(t, p, "bob", bob)
	carol := startPhone(t, "uas_message.xml", callee2IP, "udp")
	registerPhone(t, p, "carol", carol)
	callFrom(t, p, "uac.xml", "udp", "-s", "bob").ExpectCalls(1)
	callFrom(t, p, "uac_message.xml", "udp", "-s", "carol").ExpectCalls(1)
	bob.ExpectCalls(1)
	carol.ExpectCalls(1)

	log := p.log.String()
	for _, want := range []string{
		`msg="trace request"`, `stage="stage 3 (location)" matched=true verdict=continue`,
		`stage="stage 6 (forward)" matched=true verdict=forwarded targets=1`,
		`stage="stage 5 (rewrite)" code=200 matched=true`,
		`msg="trace forward"`, `msg="trace response"`,
		`msg="sip in"`, `msg="sip out"`, `message="INVITE sip:bob@`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no %s", want)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "msg=trace") || strings.Contains(line, `msg="trace`) || strings.Contains(line, `msg="sip `) {
			if strings.Contains(line, "MESSAGE") || strings.Contains(line, "carol") {
				t.Errorf("traced a message of carol's, outside trace_when: %s", line)
				break
			}
		}
	}
}

// TestSIGHUPReopensLogs: logrotate renames the call log and sends SIGHUP;
// the proxy reopens the log at its path even though the reload that SIGHUP
// also asks for fails, and the next lines go to the new file.
func TestSIGHUPReopensLogs(t *testing.T) {
	t.Parallel()
	config := testConfig("use = \"calllog\"\npath = \"calls.log\"\nformat = \"seed\"")
	p := startProxy(t, config)
	dir := filepath.Dir(p.ConfigPath)
	logPath := filepath.Join(dir, "calls.log")
	callee := startPhone(t, "uas.xml", calleeIP, "udp")
	registerPhone(t, p, "bob", callee)
	waitFile(t, logPath, ",REGISTER,bob")

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ConfigPath, []byte(config+"\n[[stage]]\nuse = \"no_such_stage\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(p.log.String())
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log.String()[before:], "outcome=failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload after SIGHUP:\n%s", p.log.String()[before:])
		}
		time.Sleep(20 * time.Millisecond)
	}
	registerUser(t, p.UDP, "carol", calleeIP, callee.Port, "udp")
	waitFile(t, logPath, ",REGISTER,carol")
	if data, _ := os.ReadFile(logPath + ".1"); strings.Contains(string(data), "carol") {
		t.Errorf("a line went to the rotated file:\n%s", data)
	}
}

// waitFile waits until the file at path contains want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %q:\n%s", path, want, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
