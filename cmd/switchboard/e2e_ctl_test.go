package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// ctlRun runs `switchboard ctl -config cfgPath args...` as an operator
// would, with the RUNTIME_DIRECTORY the harness gives the proxy, and
// returns its exit code, stdout and stderr.
func ctlRun(t *testing.T, cfgPath string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(switchboardBin, append([]string{"ctl", "-config", cfgPath}, args...)...)
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+filepath.Dir(cfgPath))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("switchboard ctl %v: %v", args, err)
	return 0, "", ""
}

// ctlOK runs ctl, fails the test unless it exits 0, and returns stdout.
func ctlOK(t *testing.T, p *proxy, args ...string) string {
	t.Helper()
	code, stdout, stderr := ctlRun(t, p.ConfigPath, args...)
	if code != 0 {
		t.Fatalf("switchboard ctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	return stdout
}

// ctlJSON runs ctl with -json and decodes its answer into v.
func ctlJSON(t *testing.T, p *proxy, v any, args ...string) {
	t.Helper()
	out := ctlOK(t, p, append(args, "-json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("switchboard ctl %v -json: %v\n%s", args, err, out)
	}
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// TestCtl drives a running proxy with every ctl command, as tables and as
// JSON: registrations and unregister, stats, calls, a live trace, a log
// level override that outlives reloads, config, and a reload that fails.
func TestCtl(t *testing.T) {
	p := startProxy(t, testConfig())
	mustContain(t, "registrations", ctlOK(t, p, "registrations"), "no registrations")
	port := freePort(t, "udp", proxyIP)
	registerUser(t, p.UDP, "alice", proxyIP, port, "udp")
	contact := fmt.Sprintf("sip:alice@%s:%d", proxyIP, port)
	mustContain(t, "registrations", ctlOK(t, p, "registrations"), "AOR", "alice", contact)
	var regs []ctl.Registration
	ctlJSON(t, p, &regs, "registrations", "alice")
	if len(regs) != 1 || regs[0].AOR != "alice" || len(regs[0].Bindings) != 1 || regs[0].Bindings[0].Contact != contact {
		t.Errorf("registrations alice -json: %+v", regs)
	}

	// A live trace: no message was traced before it, alice's are after.
	if strings.Contains(p.log.String(), `msg="sip in"`) {
		t.Fatal("messages traced before ctl trace")
	}
	mustContain(t, "trace", ctlOK(t, p, "trace", "alice", "on"), "traced users:        alice")
	registerUser(t, p.UDP, "alice", proxyIP, port, "udp")
	if !p.logSays(`msg="sip in"`, 5*time.Second) || !p.logSays(`msg="trace request"`, 5*time.Second) {
		t.Error("ctl trace alice on: alice's REGISTER was not traced")
	}
	ctlOK(t, p, "trace", "alice", "off")

	var counts metrics.Counts
	ctlJSON(t, p, &counts, "stats")
	in, out := count(counts, "in", "REGISTER", 0), count(counts, "out", "REGISTER", 200)
	if in < 2 || out < 2 {
		t.Errorf("stats: %d REGISTER in, %d 200 out, want 2 each: %+v", in, out, counts.Messages)
	}
	if len(counts.Stages) == 0 || counts.Stages[1].Stage != "2:registrar" || counts.Stages[1].Verdicts["replied"] < 2 {
		t.Errorf("stats: stages %+v, want 2:registrar with 2 replies", counts.Stages)
	}
	mustContain(t, "stats", ctlOK(t, p, "stats"), "DIRECTION", "REGISTER  200", "2:registrar", "replied=")
	mustContain(t, "calls", ctlOK(t, p, "calls"), "no calls in progress")
	var calls []any
	ctlJSON(t, p, &calls, "calls")

	mustContain(t, "unregister", ctlOK(t, p, "unregister", "alice", contact), "alice: 1 binding(s) removed")
	mustContain(t, "registrations", ctlOK(t, p, "registrations"), "no registrations")
	if code, _, stderr := ctlRun(t, p.ConfigPath, "unregister", "alice"); code != 1 || !strings.Contains(stderr, "alice has no bindings") {
		t.Errorf("unregister of nothing: exit %d, %s", code, stderr)
	}

	// A level override holds across a reload that applies a new config.
	ctlOK(t, p, "log-level", "warn")
	edit := func(content string) {
		t.Helper()
		if err := os.WriteFile(p.ConfigPath, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit(testConfig() + "# edited\n")
	mark := len(p.log.String())
	mustContain(t, "reload", ctlOK(t, p, "reload"), "reload applied")
	var cfg ctl.Config
	ctlJSON(t, p, &cfg, "config")
	if cfg.Overrides.LogLevel != "warn" || cfg.Path != p.ConfigPath || cfg.Hash != cfg.FileHash || cfg.LastReload == nil || cfg.LastReload.Result != "applied" {
		t.Errorf("config after the reload: %+v", cfg)
	}
	if strings.Contains(p.log.String()[mark:], "msg=reload") {
		t.Errorf("the reload logged at info under a warn override:\n%s", p.log.String()[mark:])
	}
	mustContain(t, "config", ctlOK(t, p, "config"), p.ConfigPath, "log level override:  warn")
	ctlOK(t, p, "log-level", "config")
	mustContain(t, "reload", ctlOK(t, p, "reload"), "reload unchanged")
	if !p.logSays("outcome=unchanged", 5*time.Second) {
		t.Error("ctl log-level config: the config's debug level is not back")
	}

	// A broken config: the reload exits 1 with the mistake, and config
	// tells the file from the config in force.
	edit(strings.Replace(testConfig(), `"registrar"`, `"registar"`, 1))
	code, _, stderr := ctlRun(t, p.ConfigPath, "reload")
	if code != 1 || !strings.Contains(stderr, `stage 2 (registar): use: unknown stage type`) || !strings.Contains(stderr, "reload failed") {
		t.Errorf("reload of a broken config: exit %d, stderr:\n%s", code, stderr)
	}
	mustContain(t, "config", ctlOK(t, p, "config"), "(edited, not in force)", "last reload:         failed")
}

func count(c metrics.Counts, direction, method string, code int) uint64 {
	for _, m := range c.Messages {
		if m.Direction == direction && m.Method == method && m.Code == code {
			return m.Count
		}
	}
	return 0
}

// TestCtlSocket checks the control socket's life: ctl names the socket it
// tried while no proxy runs, a stale socket (a killed proxy's) is replaced
// at start, the socket is 0600, and a clean stop removes it.
func TestCtlSocket(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(testConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, ctl.SocketName)
	down := func() {
		t.Helper()
		code, _, stderr := ctlRun(t, cfgPath, "calls")
		if code != 1 || !strings.Contains(stderr, "no proxy answers on "+sock) {
			t.Errorf("ctl with the proxy down: exit %d, stderr %q; want 1 naming %s", code, stderr, sock)
		}
	}
	down()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	listens := []string{
		fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP)),
		fmt.Sprintf("tcp://%s:%d", proxyIP, freePort(t, "tcp", proxyIP)),
	}
	p := launchProxy(t, cfgPath, false, listens, nil)
	mustContain(t, "calls", ctlOK(t, p, "calls"), "no calls in progress")
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket: %v %v, want a socket of mode 0600", fi.Mode(), err)
	}
	p.kill(t)
	down()
	p = launchProxy(t, cfgPath, false, listens, nil)
	mustContain(t, "calls", ctlOK(t, p, "calls"), "no calls in progress")
	p.stop(t)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the control socket stays after a clean stop: %v", err)
	}
	down()
}

// TestLogOutputs moves the log, by reloads, to a file (which follows
// logrotate: moved away, then SIGHUP), to syslog and to journald (test
// sockets standing in for /dev/log and journald's), in JSON, and back.
func TestLogOutputs(t *testing.T) {
	p := startProxy(t, testConfig())
	dir := filepath.Dir(p.ConfigPath)
	withLog := func(keys string) {
		t.Helper()
		content := strings.Replace(testConfig(), `level = "debug"`, `level = "debug"`+"\n"+keys, 1)
		if err := os.WriteFile(p.ConfigPath, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mustContain(t, "reload", ctlOK(t, p, "reload"), "reload applied")
	}
	logFile := filepath.Join(dir, "sb.log")
	// fileSays polls the log file for text: the reloads that ctl makes
	// write lines.
	fileSays := func(text string, poke func()) bool {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if data, _ := os.ReadFile(logFile); strings.Contains(string(data), text) {
				return true
			}
			poke()
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	withLog(`output = "file"` + "\n" + `file = "sb.log"`)
	if !fileSays("outcome=applied", func() {}) {
		t.Fatal("output = file: the reload's outcome is not in sb.log")
	}
	mark := len(p.log.String())
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if !fileSays("outcome=unchanged", func() { ctlOK(t, p, "reload") }) {
		t.Error("sb.log moved away: no new sb.log with the next lines")
	}
	if err := os.Rename(logFile, logFile+".2"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !fileSays("cause=SIGHUP", func() {}) {
		t.Error("SIGHUP: sb.log not reopened")
	}
	if strings.Contains(p.log.String()[mark:], "outcome=") {
		t.Errorf("lines went to stderr with output = file:\n%s", p.log.String()[mark:])
	}

	tests := []struct {
		output string
		want   []string
	}{
		{"syslog", []string{"<30>", " switchboard[", `: {"level":"INFO","msg":"reload","outcome":"applied"`}},
		{"journald", []string{"PRIORITY=6\n", "SYSLOG_IDENTIFIER=switchboard\n", `MESSAGE={"level":"INFO","msg":"reload","outcome":"applied"`}},
	}
	for i, tc := range tests {
		sock := filepath.Join(dir, tc.output+".sock")
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		withLog(fmt.Sprintf("format = \"json\"\noutput = %q\nsocket = %q", tc.output, sock))
		found := false
		buf := make([]byte, 65536)
		for !found {
			_ = ln.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := ln.Read(buf)
			if err != nil {
				t.Errorf("test %d: output = %s: no reload line read: %v", i, tc.output, err)
				break
			}
			found = strings.Contains(string(buf[:n]), `"outcome":"applied"`)
			if found {
				for _, w := range tc.want {
					if !strings.Contains(string(buf[:n]), w) {
						t.Errorf("test %d: %q lacks %q", i, buf[:n], w)
					}
				}
			}
		}
		ln.Close()
	}
	mark = len(p.log.String())
	if err := os.WriteFile(p.ConfigPath, []byte(testConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctlOK(t, p, "reload")
	if !p.logSays("outcome=applied", 5*time.Second) || !strings.Contains(p.log.String()[mark:], "level=INFO msg=reload") {
		t.Errorf("back to stderr in text: %s", p.log.String()[mark:])
	}
}
