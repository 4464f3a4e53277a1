package main

// The proxy run the way examples/switchboard.service runs it: the config
// folder read-only (ProtectSystem=strict), a writable state folder
// (StateDirectory) named by server.state_dir.

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readOnlyConfig is a command prefix for the binary that makes the folder
// of the -config file read-only to it: as root a read-only bind mount in a
// mount namespace of its own, as ProtectSystem=strict does; as another user
// the folder's mode (writable gives it back).
func readOnlyConfig(t *testing.T) []string {
	t.Helper()
	const findDir = `for a; do [ "$prev" = -config ] && d=$(dirname "$a"); prev=$a; done; `
	if os.Geteuid() != 0 {
		return []string{"sh", "-c", findDir + `chmod 0555 "$d" && exec "$0" "$@"`}
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare is missing (Debian package util-linux): make test-deps installs it")
	}
	return []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		findDir + `mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" "$d" && exec "$0" "$@"`}
}

// writable makes dir writable again when the test ends, so that it can be
// removed: as another user than root, readOnlyConfig took its write
// permission away.
func writable(t *testing.T, dir string) {
	if os.Geteuid() != 0 {
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
}

// TestUnitReadOnlyConfig runs the proxy with its config folder read-only
// and server.state_dir naming a folder that does not exist yet. It must
// start, write its signing key, its store and its relative call log into
// state_dir and nothing beside the config, and keep a dialog across a
// restart (the key and the dialogs it wrote there at stop).
func TestUnitReadOnlyConfig(t *testing.T) {
	requireE2E(t)
	under := readOnlyConfig(t)
	// The prefix itself is checked first: a file written by a shell run
	// under it must fail, or the test proves nothing.
	probeDir := t.TempDir()
	probe := exec.Command(under[0], append(under[1:], "sh", "-c", `: > "$(dirname "$1")/probe"`, "-config", filepath.Join(probeDir, "config.toml"))...)
	writable(t, probeDir)
	if out, err := probe.CombinedOutput(); err == nil {
		t.Fatalf("a file was written in the read-only folder: the prefix %q does not work\n%s", under, out)
	}

	state := filepath.Join(t.TempDir(), "lib", "switchboard")
	cfg := secConfig(t, false, "state_dir = "+strconv.Quote(state))
	forward := "[[stage]]\nuse            = \"forward\""
	if !strings.Contains(cfg, forward) {
		t.Fatalf("examples/secure.toml has no %q", forward)
	}
	cfg = strings.Replace(cfg, forward, "[[stage]]\nuse = \"calllog\"\npath = \"calls.log\"\n\n"+forward, 1)

	// As the unit's RuntimeDirectory: the control socket's folder, writable.
	run := append(append([]string(nil), under...), "env", "RUNTIME_DIRECTORY="+t.TempDir())
	p := startProxyUnder(t, run, cfg, false)
	confDir := filepath.Dir(p.ConfigPath)
	writable(t, confDir)
	if strings.Contains(p.log.String(), "no lasting key") {
		t.Errorf("the proxy found no lasting key for its Record-Routes:\n%s", p.log.String())
	}
	phone := dlgStartPhone(t, calleeIP, true)
	secRegister(t, p, "alice", phone.secPhone)
	ua := secNewUA(t, callerIP, p.UDP)
	call := dlgInvite(t, ua, "mallory@evil.test", "alice", true)
	call.send("ACK", "", "", nil)
	// The restart comes once the call is up: its ACK reached the phone.
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(phone.received(), "ACK") {
		if time.Now().After(deadline) {
			t.Fatalf("the ACK did not reach the phone: it received %q", phone.received())
		}
		time.Sleep(20 * time.Millisecond)
	}

	p = p.restart(t)
	if codes := call.send("INVITE", "", "", nil); dlgLast(codes) != 200 {
		t.Errorf("re-INVITE after the restart: codes %v, want 200: the dialog did not survive", codes)
	} else {
		call.send("ACK", "", "", nil)
	}
	if codes := call.send("BYE", "", "", nil); dlgLast(codes) != 200 {
		t.Errorf("BYE after the restart: codes %v, want 200", codes)
	}
	p.stop(t)

	for _, name := range []string{"switchboard.key", "switchboard.db", "switchboard.db.dialogs", "calls.log"} {
		if _, err := os.Stat(filepath.Join(state, name)); err != nil {
			t.Errorf("state_dir: %v", err)
		}
	}
	entries, err := os.ReadDir(confDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); name != "config.toml" && name != "switchboard.log" {
			t.Errorf("%s was written beside the config", name)
		}
	}
}
