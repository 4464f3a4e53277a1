package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cliTimeout bounds a command that must not start the proxy: one that
// does runs until it is killed.
const cliTimeout = 20 * time.Second

// runCLI runs the binary with args in dir and returns its exit code and
// output; a run that outlives cliTimeout fails the test.
func runCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, switchboardBin, args...)
	cmd.Dir = dir
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("switchboard %s still ran after %v (a live start?)\n%s", strings.Join(args, " "), cliTimeout, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("switchboard %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestCLIExitCodes runs the built binary the ways issue #20 found wrong,
// in a folder whose config.toml would start a proxy: no word but run may
// start it, and validate checks the file it is given.
func TestCLIExitCodes(t *testing.T) {
	if buildErr != nil {
		t.Fatalf("the switchboard binary did not build: %v", buildErr)
	}
	dir := t.TempDir()
	live := fmt.Sprintf("[server]\nlisten = [\"udp://%s:%d\"]\n\n[[stage]]\nuse = \"forward\"\n", proxyIP, freePort(t, "udp", proxyIP))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(live), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[[stage]]\nuse = \"forwrd\"\n\n[server]\nlisten = [\"udp://127.0.0.1:5999\", \"udp://127.0.0.1:5999\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	revision := builtRevision(t)
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"version"}, 0, "revision " + revision, ""},
		{[]string{"version"}, 0, runtime.Version(), ""},
		{[]string{"-version"}, 0, "switchboard ", ""},
		{[]string{"-h"}, 0, "usage: switchboard [run]", ""},
		{[]string{"validate", "broken.toml"}, 1, "", `broken.toml:2:1: stage 1 (forwrd): use: unknown stage type "forwrd", did you mean "forward"?`},
		{[]string{"validate", "broken.toml"}, 1, "", `broken.toml:5:1: server: listen[1]: "udp://127.0.0.1:5999" listens on UDP 127.0.0.1:5999, as listen[0]`},
		{[]string{"-config", "broken.toml"}, 1, "", `broken.toml:2:1: stage 1 (forwrd)`},
		{[]string{"validate"}, 0, "config.toml: ok (1 stages", ""},
		{[]string{"versoin"}, 2, "", `unknown subcommand "versoin"`},
		{[]string{"ctl", "frobnicate"}, 2, "", `switchboard ctl: unknown command "frobnicate"`},
		{[]string{"-config", "config.toml", "now"}, 2, "", `unexpected argument "now"`},
		{[]string{"run", "-watch=false", "config.toml"}, 2, "", `unexpected argument "config.toml"`},
		{[]string{"stages", "x"}, 2, "", "usage: switchboard"},
	}
	for i, tc := range tests {
		code, stdout, stderr := runCLI(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("test %d: switchboard %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				i, strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

// builtRevision is the revision a build of this checkout with
// -buildvcs=auto stamps: Go stamps the commit when the module sits in a
// git checkout whose .git is a folder, not in a git worktree, where .git
// is a file.
func builtRevision(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("../../.git"); err != nil || !fi.IsDir() {
		return "unknown"
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	return strings.TrimSpace(string(out))[:12]
}

// TestStartupLogsVersion checks that the ready line names the version.
func TestStartupLogsVersion(t *testing.T) {
	p := startProxy(t, testConfig())
	if !p.logSays("msg=ready version=", 5*time.Second) {
		t.Errorf("the ready line has no version:\n%s", p.log.String())
	}
}

// TestStartLogFileInNewStateDir starts a proxy whose log file lies in a
// state_dir that does not exist yet, on a port already taken: the folder
// is made before the log is opened, so the start's error is in the file,
// and on stderr too, for systemd's journal.
func TestStartLogFileInNewStateDir(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	port := freePort(t, "udp", proxyIP)
	taken, err := net.ListenPacket("udp", net.JoinHostPort(proxyIP, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	config := fmt.Sprintf("[server]\nlisten = [\"udp://%s:%d\"]\nstate_dir = \"state/new\"\n\n[log]\noutput = \"file\"\nfile = \"sb.log\"\n\n[[stage]]\nuse = \"forward\"\n", proxyIP, port)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, dir, "-watch=false")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the port is taken); stderr %q", code, stderr)
	}
	logged, err := os.ReadFile(filepath.Join(dir, "state/new/sb.log"))
	if err != nil || !strings.Contains(string(logged), "msg=starting") {
		t.Errorf("the log file has no start error: %v %q; stderr %q", err, logged, stderr)
	}
	if !strings.HasPrefix(stderr, "starting: ") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("stderr %q does not say why the start failed", stderr)
	}
}
