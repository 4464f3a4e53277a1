package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
)

// chromiumPath is Debian's Chromium, which make test installs.
const chromiumPath = "/usr/bin/chromium"

// browserDir holds the browser phone (phone.js) and its npm packages,
// installed by make test with npm ci.
var browserDir = filepath.Join("testdata", "browser")

// browserOrigin is the page the browser phone runs on; the proxy's
// [websocket] origins allows it.
const browserOrigin = "https://phone.sip.test"

// TestBrowserPhone runs a real browser phone: JsSIP in headless Chromium
// (testdata/browser/phone.js) registers over WSS to the binary as alice,
// calls bob, a SIPp phone on UDP, and hangs up; then bob calls alice and
// hangs up. Both calls carry WebRTC SDP (examples/sipp/webrtc_*.xml). It
// checks the two Record-Route entries of each call (RFC 5658: UDP facing
// the SIPp phone, WSS with the browser's flow token facing the browser),
// and that ACK and BYE cross the proxy both ways: the SIPp BYE reaches the
// browser only through the flow token, its Contact being .invalid.
func TestBrowserPhone(t *testing.T) {
	requireBrowser(t)
	dir := t.TempDir()
	ca := certstest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, time.Now().Add(24*time.Hour), proxyIP, proxyDomain)
	certstest.Write(t, filepath.Join(dir, "cert.pem"), certPEM)
	certstest.Write(t, filepath.Join(dir, "key.pem"), keyPEM)
	cfg := strings.Replace(testConfig(), "[log]",
		"[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n[websocket]\norigins = [\""+browserOrigin+"\"]\n\n[log]", 1)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	requireE2E(t)
	wssAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	p := launchProxy(t, cfgPath, false, []string{
		fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP)),
		"wss://" + wssAddr + "/sip",
	}, nil)

	// bob waits through Chromium's start and the registration first.
	bob := startPhone(t, "webrtc_uas.xml", calleeIP, "udp", "-timeout", "60s")
	registerPhone(t, p, "bob", bob)

	b := startBrowser(t, map[string]any{
		"chromium": chromiumPath,
		"spki":     spkiHash(t, certPEM),
		"origin":   browserOrigin,
		"wss":      "wss://" + wssAddr + "/sip",
		"uri":      "sip:alice@" + proxyDomain,
		"callee":   "sip:bob@" + proxyDomain,
		"within":   15000,
	})
	b.await("registered")
	b.await("call1 confirmed")
	b.await("call1 ended local")
	bob.ExpectCalls(1)
	invites := bob.Received("INVITE ")
	if len(invites) == 0 {
		t.Fatalf("bob received no INVITE\n%s", bob.Report())
	}
	checkRecordRoutes(t, "the browser's INVITE at bob", invites[0].Headers("Record-Route"), "udp")
	if len(bob.Received("ACK ")) == 0 || len(bob.Received("BYE ")) == 0 {
		t.Errorf("the browser's ACK and BYE did not reach bob\n%s", bob.Report())
	}

	b.await("waiting")
	carol := callFrom(t, p, "webrtc_uac.xml", "udp", "-s", "alice", "-d", "300")
	var browserRR []string
	for {
		line := b.next("call2 confirmed")
		if rr, ok := strings.CutPrefix(line, "call2 record-route "); ok {
			browserRR = append(browserRR, rr)
			continue
		}
		if line != "call2 confirmed" {
			t.Fatalf("browser phone: %q, want call2 confirmed\n%s", line, b.log())
		}
		break
	}
	b.await("call2 ended remote BYE")
	b.await("unregistered")
	carol.ExpectCalls(1)
	checkRecordRoutes(t, "the INVITE at the browser", browserRR, "wss")
	if oks := carol.Received("SIP/2.0 200"); len(oks) > 0 {
		checkRecordRoutes(t, "the browser's 200 at the caller", oks[0].Headers("Record-Route"), "wss")
	} else {
		t.Errorf("the caller got no 200\n%s", carol.Report())
	}
	b.wait()
}

// requireBrowser skips the test when Chromium or the npm packages are
// missing, unless it runs under CI (CI set), where make test installed them.
func requireBrowser(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath+" (Debian package chromium)")
	}
	for _, pkg := range []string{"jssip", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", pkg)); err != nil {
			missing = append(missing, filepath.Join(browserDir, "node_modules", pkg)+" (npm ci in "+browserDir+")")
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if len(missing) == 0 {
		return
	}
	msg := "the browser phone test needs " + strings.Join(missing, ", ") + ": make test-deps installs them"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// spkiHash returns the base64 SHA-256 of the certificate's public key,
// which Chromium's --ignore-certificate-errors-spki-list takes.
func spkiHash(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block in the test certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// checkRecordRoutes checks the Record-Route of a call between the browser
// and a UDP phone: two entries of the proxy (RFC 5658), each with its
// dialog signature (sbd), the WSS one with the browser's flow token (sbf);
// the top one, which the callee's Route names first, is for the callee's
// transport, callee.
func checkRecordRoutes(t *testing.T, what string, rr []string, callee string) {
	t.Helper()
	var entries []string
	for _, h := range rr {
		for _, e := range strings.Split(h, ",") {
			entries = append(entries, strings.TrimSpace(e))
		}
	}
	want := []string{"transport=udp;", "transport=wss;"}
	if callee == "wss" {
		want[0], want[1] = want[1], want[0]
	}
	ok := len(entries) == 2
	for i := 0; ok && i < 2; i++ {
		ok = strings.Contains(entries[i], want[i]) && strings.Contains(entries[i], "sbd=") &&
			strings.Contains(entries[i], "sbf=") == (want[i] == "transport=wss;")
	}
	if !ok {
		t.Errorf("%s: Record-Route %q, want %s above %s, each with sbd, the wss one with a flow token (sbf)", what, entries, want[0], want[1])
	}
}

// browserRun is the browser phone's process.
type browserRun struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	out   *syncBuffer // everything it printed, stdout and stderr
	done  chan struct{}
	err   error
}

// browserTimeout bounds each step of the browser phone: Chromium's start,
// a registration, a call's set-up.
const browserTimeout = 30 * time.Second

// startBrowser runs testdata/browser/phone.js with cfg as PHONE_CONFIG.
// It is stopped when the test ends if it still runs.
func startBrowser(t *testing.T, cfg map[string]any) *browserRun {
	t.Helper()
	return startBrowserScript(t, "phone.js", "PHONE_CONFIG", cfg)
}

// startBrowserScript runs the node script of testdata/browser with cfg,
// as JSON, in the environment variable env.
func startBrowserScript(t *testing.T, script, env string, cfg map[string]any) *browserRun {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := &browserRun{t: t, lines: make(chan string, 64), out: &syncBuffer{}, done: make(chan struct{})}
	b.cmd = exec.Command("node", script)
	b.cmd.Dir = browserDir
	b.cmd.Env = append(os.Environ(), env+"="+string(data))
	b.cmd.Stderr = b.out
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start node phone.js: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stdout, b.out))
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		b.err = b.cmd.Wait()
		close(b.lines)
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			// SIGTERM first: playwright-core closes Chromium on it.
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(5 * time.Second):
				_ = b.cmd.Process.Kill()
				<-b.done
			}
		}
		if t.Failed() {
			t.Logf("browser phone output:\n%s", b.log())
		}
	})
	return b
}

// next returns the phone's next line, failing the test when it exits or
// prints nothing for browserTimeout; want says what the test waits for.
func (b *browserRun) next(want string) string {
	b.t.Helper()
	select {
	case line, ok := <-b.lines:
		if !ok {
			b.t.Fatalf("browser phone exited (%v) before %q", b.err, want)
		}
		return line
	case <-time.After(browserTimeout):
		b.t.Fatalf("browser phone: no %q within %v", want, browserTimeout)
	}
	return ""
}

// await fails the test unless the phone's next line is want.
func (b *browserRun) await(want string) {
	b.t.Helper()
	if line := b.next(want); line != want {
		b.t.Fatalf("browser phone: %q, want %q", line, want)
	}
}

// wait waits for the phone to exit and fails the test unless it exited 0.
func (b *browserRun) wait() {
	b.t.Helper()
	select {
	case <-b.done:
	case <-time.After(browserTimeout):
		b.t.Fatalf("browser phone did not exit within %v of its last step", browserTimeout)
	}
	if b.err != nil {
		b.t.Errorf("browser phone: %v", b.err)
	}
}

func (b *browserRun) log() string { return b.out.String() }
