package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// consoleToken is the admin token of TestConsoleBrowser's proxy.
const consoleToken = "e2e-console-token-0123456789abcdef"

// xssName is the display name of the caller of TestConsoleBrowser's call.
const xssName = "<script>alert(1)</script>"

// consoleShotsEnv names a folder that TestConsoleBrowser writes its
// screenshots to instead of its artifact folder: docs/console/ when the
// screenshots of docs/console.md are made again.
const consoleShotsEnv = "SWITCHBOARD_CONSOLE_SCREENSHOTS"

// TestConsoleBrowser drives the web console in headless Chromium
// (testdata/browser/console.js) against the binary: it logs in and sees
// the registration SIPp made, with its User-Agent; sees a SIPp call live, then its ladder with
// the messages of both legs in order, the caller's display name
// "<script>...</script>" shown as text and run nowhere; edits the rewrite stage's reason in
// the config editor and saves, and the next call's 200 carries the new
// reason (after a save refused with 409, the file having changed on disk
// since the page loaded it; the token is never shown); then makes a broken
// edit, sees the error at its line, and Save leaves the file as it was;
// the editor says so when the config's folder is read-only; last, it unregisters bob, and the proxy
// then holds no binding. The screenshots of each page go to the test's
// artifact folder (go test -artifacts).
func TestConsoleBrowser(t *testing.T) {
	requireBrowser(t)
	requireE2E(t)
	dir := t.TempDir()
	httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	cfg := reloadConfig("OK THANKS") + fmt.Sprintf("\n[http]\nlisten = %q\ntoken = %q\n", httpAddr, consoleToken)
	// config.toml is a symlink to rw/config.toml, which the console saves
	// through. Late in the run the browser points it at ro/config.toml,
	// in a folder the proxy cannot write (readOnlyConfig's trick: a
	// read-only bind mount in the proxy's own mount namespace as root, the
	// folder's mode otherwise), and the editor must say so.
	cfgPath, filePath, roDir := filepath.Join(dir, "config.toml"), filepath.Join(dir, "rw", "config.toml"), filepath.Join(dir, "ro")
	for _, f := range []string{filePath, filepath.Join(roDir, "config.toml")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join("rw", "config.toml"), cfgPath); err != nil {
		t.Fatal(err)
	}
	var under []string
	if os.Geteuid() == 0 {
		under = []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"`, "sh", roDir}
	} else {
		if err := os.Chmod(roDir, 0o555); err != nil {
			t.Fatal(err)
		}
		writable(t, roDir)
	}
	p := launchProxy(t, cfgPath, false, []string{fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP))}, under)
	// bob answers both calls: the one the console watches and the one
	// after the save.
	bob := startPhone(t, "uas.xml", calleeIP, "udp", "-m", "2", "-timeout", "120s")
	registerPhone(t, p, "bob", bob)

	out := os.Getenv(consoleShotsEnv)
	if out == "" {
		out = t.ArtifactDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	broken := [2]string{"'response.code == 200'", "'respons.code == 200'"}
	b := startBrowserScript(t, "console.js", "CONSOLE_CONFIG", map[string]any{
		"chromium":  chromiumPath,
		"url":       "http://" + httpAddr + "/console/",
		"token":     consoleToken,
		"out":       out,
		"user":      "bob",
		"reason":    `reason = "OK THANKS"`,
		"newReason": `reason = "OK CONSOLE"`,
		"broken":    broken,
		"within":    20000,
		"file":      filePath,
		"link":      cfgPath,
		"roFile":    filepath.Join(roDir, "config.toml"),
		"script":    xssName,
	})
	b.expect("login refused: ")
	b.expect("logged in")

	var reg struct {
		AOR, Contact string
		Cells        []string
	}
	b.decode("registered ", &reg)
	bobAddr := net.JoinHostPort(bob.IP, strconv.Itoa(bob.Port))
	if (reg.AOR != "bob" && !strings.HasPrefix(reg.AOR, "sip:bob@")) || !strings.Contains(reg.Contact, bobAddr) || !slices.Contains(reg.Cells, "UDP") ||
		!slices.Contains(reg.Cells, "SIPp register.xml") {
		t.Errorf("registrations page: %+v, want bob's AOR with the contact %s over UDP, from SIPp register.xml", reg, bobAddr)
	}

	// The call's caller has a display name that is a script: the pages
	// must show it as text, and no script may run (console.js fails on a
	// dialog).
	uac, err := os.ReadFile(scenario(t, "uac.xml"))
	if err != nil {
		t.Fatal(err)
	}
	xssUAC := filepath.Join(dir, "uac_xss.xml")
	if err := os.WriteFile(xssUAC, []byte(strings.ReplaceAll(string(uac), "From: <sip:caller@", "From: \""+xssName+"\" <sip:caller@")), 0o644); err != nil {
		t.Fatal(err)
	}
	alice := runSipp(t, p.UDP, "-sf", xssUAC, "-i", callerIP, "-s", "bob", "-d", "3000")
	callID := b.expect("live ")
	b.expect("ended ")
	var shown struct{ List, Ladder string }
	b.decode("from ", &shown)
	for where, text := range map[string]string{"the calls list": shown.List, "the ladder": shown.Ladder} {
		if !strings.Contains(text, `"`+xssName+`" <sip:caller@`) {
			t.Errorf("%s shows the From as %q, want the display name %s as text", where, text, xssName)
		}
	}
	alice.ExpectCalls(1)
	if invites := alice.Received(""); len(invites) > 0 && invites[0].Header("Call-ID") != callID {
		t.Errorf("the live call is %q, want alice's %q", callID, invites[0].Header("Call-ID"))
	}
	var ladder []struct{ From, To, Label string }
	b.decode("ladder ", &ladder)
	aliceAddr := net.JoinHostPort(alice.IP, strconv.Itoa(alice.Port))
	leg := func(phone string) []string {
		var labels []string
		for _, m := range ladder {
			if (m.From == phone && m.To == "proxy") || (m.From == "proxy" && m.To == phone) {
				labels = append(labels, m.Label)
			}
		}
		return labels
	}
	wantLegs := map[string][]string{
		aliceAddr: {"INVITE", "100 Trying", "180 Ringing", "200 OK THANKS", "ACK", "BYE", "200 OK THANKS"},
		bobAddr:   {"INVITE", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"},
	}
	for phone, want := range wantLegs {
		if got := leg(phone); strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("ladder between %s and the proxy: %q, want %q\nwhole ladder: %+v", phone, got, want, ladder)
		}
	}
	var detail struct {
		First     string
		Decisions []string
	}
	b.decode("detail ", &detail)
	if !strings.HasPrefix(detail.First, "INVITE sip:bob@") || !slices.Contains(detail.Decisions, "stage 5 (rewrite)") {
		t.Errorf("the first message's detail: %+v, want the INVITE to bob with each stage's decision", detail)
	}

	var conflict struct{ Status, Text string }
	b.decode("conflict ", &conflict)
	if !strings.Contains(conflict.Text, "Changed on disk") {
		t.Errorf("a save after the file changed on disk: %+v, want the page to say it changed", conflict)
	}
	b.expect("saved applied")
	alice2 := callFrom(t, p, "uac.xml", "udp", "-s", "bob", "-d", "100")
	alice2.ExpectCalls(1)
	for _, ok := range alice2.Received("SIP/2.0 200") {
		if ok.FirstLine() != "SIP/2.0 200 OK CONSOLE" {
			t.Errorf("after the save, the caller got %q, want the new reason OK CONSOLE", ok.FirstLine())
		}
	}
	saved, err := os.ReadFile(filePath) // config.toml may point at ro/ by now
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), `reason = "OK CONSOLE"`) || !strings.Contains(string(saved), "# changed on disk") ||
		!strings.Contains(string(saved), fmt.Sprintf("token = %q", consoleToken)) || strings.Contains(string(saved), "hidden") {
		t.Errorf("the saved file does not hold the edit, the change on disk and the token as it was:\n%s", saved)
	}

	var bad struct {
		Lines  []int
		Errors []string
	}
	b.decode("error ", &bad)
	wantLine := 0
	for i, l := range strings.Split(string(saved), "\n") {
		if strings.Contains(l, broken[0]) {
			wantLine = i + 1
		}
	}
	if len(bad.Lines) != 1 || bad.Lines[0] != wantLine || len(bad.Errors) == 0 || !strings.HasPrefix(bad.Errors[0], fmt.Sprintf("line %d", wantLine)) {
		t.Errorf("the broken edit: errors at lines %v (%q), want one at line %d", bad.Lines, bad.Errors, wantLine)
	}
	b.expect("refused ")
	if now, err := os.ReadFile(filePath); err != nil || string(now) != string(saved) {
		t.Errorf("the broken edit changed the file (%v):\n%s", err, now)
	}
	b.expect("reverted")
	if banner := b.expect("read-only "); !strings.Contains(banner, roDir) {
		t.Errorf("the read-only banner says %q, want it to name %s", banner, roDir)
	}
	b.expect("overview ")
	b.expect("unregistered ")
	b.expect("done")
	b.wait()
	bob.ExpectCalls(2)
	if code, out, errOut := ctlRun(t, cfgPath, "registrations"); code != 0 || strings.Contains(out, "bob") {
		t.Errorf("switchboard ctl registrations (exit %d) after the console's Unregister:\n%s%s", code, out, errOut)
	}
}

// expect fails the test unless the browser's next line starts with
// prefix, and returns the rest of it.
func (b *browserRun) expect(prefix string) string {
	b.t.Helper()
	line := b.next(prefix)
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		b.t.Fatalf("browser: %q, want %q", line, prefix)
	}
	return rest
}

// decode reads the browser's next line, which starts with prefix, and
// decodes the JSON after it into v.
func (b *browserRun) decode(prefix string, v any) {
	b.t.Helper()
	rest := b.expect(prefix)
	if err := json.Unmarshal([]byte(rest), v); err != nil {
		b.t.Fatalf("browser: %s%s: %v", prefix, rest, err)
	}
}
