package main

// The .deb of `make deb`, installed, upgraded and purged with dpkg on this
// machine, as an administrator would.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debTimeout bounds each command of the package test; `make deb` builds a
// static binary, a few minutes on a cold build cache.
const debTimeout = 10 * time.Minute

// debConfig is the conffile the package installs.
const debConfig = "/etc/switchboard/config.toml"

// requireRootDpkg stops the package test where it cannot run: it installs
// a package, so it needs root and dpkg. CI runs it as root; elsewhere it
// is skipped with the reason.
func requireRootDpkg(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "it installs a .deb with dpkg, as root"
	} else if _, err := exec.LookPath("dpkg"); err != nil {
		why = "dpkg is missing: it installs a .deb"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the package test cannot run in CI: %s", why)
	}
	t.Skipf("skipping the package test: %s (CI runs it)", why)
}

// debRun runs a command, bounded by debTimeout, and fails the test when it
// fails.
func debRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := debTry(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// debTry runs a command with no input, bounded by debTimeout, and returns
// what it printed.
func debTry(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), debTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// debStatus returns dpkg's status of the switchboard package and its
// version, empty when dpkg knows nothing of it.
func debStatus() (status, version string) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}|${Version}", "switchboard").Output()
	if err != nil {
		return "", ""
	}
	status, version, _ = strings.Cut(string(out), "|")
	return status, version
}

// TestDebPackage builds the .deb with `make deb`, installs it, checks what
// it put in place and that `switchboard validate` accepts its config, edits
// the conffile, upgrades to a second version (the edit is kept, with no
// question asked), runs the packaged binary as its user with the packaged
// config (state in /var/lib/switchboard), rotates a log with the logrotate
// file, and purges it. Whatever happens, the package is purged at the end.
func TestDebPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the package test in -short mode: it builds a .deb")
	}
	requireRootDpkg(t)
	if status, version := debStatus(); strings.HasSuffix(status, " installed") {
		t.Fatalf("switchboard %s is installed on this machine: the test would replace it (dpkg --purge switchboard first)", version)
	}

	out := t.TempDir()
	const v1, v2 = "0.0.1~test", "0.0.2~test"
	debRun(t, "make", "-C", "../..", "deb", "DEB_VERSION="+v1, "DEB_OUT="+out)
	debRun(t, "../../packaging/deb.sh", filepath.Join(out, "deb", "switchboard"), v2, out)
	arch := strings.TrimSpace(debRun(t, "dpkg", "--print-architecture"))
	deb1 := filepath.Join(out, fmt.Sprintf("switchboard_%s_%s.deb", v1, arch))
	deb2 := filepath.Join(out, fmt.Sprintf("switchboard_%s_%s.deb", v2, arch))

	t.Cleanup(func() {
		if out, err := debTry("dpkg", "--purge", "switchboard"); err != nil {
			t.Errorf("dpkg --purge switchboard: %v\n%s", err, out)
		}
	})
	debRun(t, "dpkg", "-i", deb1)
	if status, version := debStatus(); status != "install ok installed" || version != v1 {
		t.Fatalf("after dpkg -i: %q %q, want installed %s", status, version, v1)
	}
	debInstalled(t)
	// make deb builds with -buildvcs=auto, whatever GOFLAGS says.
	if got, want := debRun(t, "/usr/bin/switchboard", "version"), "(revision "+builtRevision(t); !strings.Contains(got, want) {
		t.Errorf("switchboard version of the package: %q, want %q", got, want)
	}

	edited := debEdit(t)
	debRun(t, "dpkg", "-i", deb2)
	if status, version := debStatus(); status != "install ok installed" || version != v2 {
		t.Fatalf("after the upgrade: %q %q, want installed %s", status, version, v2)
	}
	if got, err := os.ReadFile(debConfig); err != nil || string(got) != edited {
		t.Errorf("the upgrade did not keep the edited %s (%v):\n%s", debConfig, err, got)
	}
	for _, suffix := range []string{".dpkg-new", ".dpkg-dist", ".dpkg-old"} {
		if _, err := os.Stat(debConfig + suffix); err == nil {
			t.Errorf("the upgrade left %s%s", debConfig, suffix)
		}
	}
	debInstalled(t)
	debServe(t)
	debRotate(t)

	debRun(t, "dpkg", "--purge", "switchboard")
	if status, _ := debStatus(); strings.HasSuffix(status, " installed") || strings.Contains(status, "config-files") {
		t.Errorf("after the purge: status %q", status)
	}
	for _, gone := range []string{"/usr/bin/switchboard", "/etc/switchboard", "/etc/logrotate.d/switchboard", "/var/lib/switchboard", "/var/log/switchboard", "/usr/lib/systemd/system/switchboard.service"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s is still there after the purge", gone)
		}
	}
}

// debInstalled checks what the package put in place: the unit is
// examples/switchboard.service, the config is readable by the proxy's user
// and no one else, and `switchboard validate` run as that user accepts it.
func debInstalled(t *testing.T) {
	t.Helper()
	unit, err := os.ReadFile("/usr/lib/systemd/system/switchboard.service")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile("../../examples/switchboard.service"); !bytes.Equal(unit, want) {
		t.Errorf("the installed unit is not examples/switchboard.service")
	}
	if _, err := user.Lookup("switchboard"); err != nil {
		t.Fatalf("the postinst made no switchboard user: %v", err)
	}
	fi, err := os.Stat(debConfig)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := user.LookupGroupId(fmt.Sprint(fi.Sys().(*syscall.Stat_t).Gid))
	if fi.Mode().Perm() != 0o640 || g == nil || g.Name != "switchboard" {
		t.Errorf("%s: mode %v, group %v; want 0640, switchboard", debConfig, fi.Mode().Perm(), g)
	}
	got := debRun(t, "setpriv", "--reuid=switchboard", "--regid=switchboard", "--init-groups",
		"/usr/bin/switchboard", "validate", "-config", debConfig)
	if !strings.Contains(got, ": ok (") {
		t.Errorf("switchboard validate: %s", got)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := debTry("systemd-analyze", "verify", "/usr/lib/systemd/system/switchboard.service"); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

// debEdit changes the installed conffile, as an administrator does, and
// returns its new content.
func debEdit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(debConfig)
	if err != nil {
		t.Fatal(err)
	}
	const from, to = `domains = ["switchboard.local"]`, `domains = ["edited.test"]`
	if !bytes.Contains(data, []byte(from)) {
		t.Fatalf("%s has no %s", debConfig, from)
	}
	edited := strings.Replace(string(data), from, to, 1)
	if err := os.WriteFile(debConfig, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	return edited
}

// debServe runs the packaged binary as the switchboard user with the
// packaged config (on a loopback port, not 5060) until it is ready, with
// /run/switchboard made as systemd's RuntimeDirectory would; checks that
// `ctl -config` from an operator's shell (no RUNTIME_DIRECTORY) reaches
// it; stops it, and checks that it kept its signing key and its store in
// /var/lib/switchboard.
func debServe(t *testing.T) {
	t.Helper()
	const runtimeDir = "/run/switchboard"
	if _, err := os.Stat(runtimeDir); err == nil {
		t.Fatalf("%s exists: is a switchboard running here?", runtimeDir)
	}
	debRun(t, "install", "-d", "-o", "switchboard", "-g", "switchboard", "-m", "0750", runtimeDir)
	t.Cleanup(func() { _ = os.RemoveAll(runtimeDir) })
	listen := fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP))
	var log syncBuffer
	cmd := exec.Command("setpriv", "--reuid=switchboard", "--regid=switchboard", "--init-groups",
		"/usr/bin/switchboard", "-config", debConfig, "-watch=false", "-listen", listen)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(readyTimeout)
	for !strings.Contains(log.String(), "msg=ready") {
		select {
		case err := <-done:
			t.Fatalf("the packaged switchboard exited before it was ready: %v\n%s", err, log.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("the packaged switchboard: no msg=ready after %v\n%s", readyTimeout, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	ctlCmd := exec.Command("/usr/bin/switchboard", "ctl", "-config", debConfig, "calls")
	ctlCmd.Env = slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, "RUNTIME_DIRECTORY=") })
	if out, err := ctlCmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "no calls in progress") {
		t.Errorf("switchboard ctl -config %s calls, from a shell: %v\n%s", debConfig, err, out)
	}
	if fi, err := os.Stat(filepath.Join(runtimeDir, "switchboard.ctl")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("no control socket in %s: %v", runtimeDir, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the packaged switchboard did not stop cleanly: %v\n%s", err, log.String())
		}
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("the packaged switchboard did not stop within %v of SIGTERM\n%s", stopTimeout, log.String())
	}
	for _, name := range []string{"switchboard.key", "switchboard.db"} {
		fi, err := os.Stat(filepath.Join("/var/lib/switchboard", name))
		if err != nil {
			t.Errorf("state: %v", err)
			continue
		}
		if u, _ := user.LookupId(fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid)); u == nil || u.Username != "switchboard" {
			t.Errorf("/var/lib/switchboard/%s is owned by %v, not switchboard", name, u)
		}
	}
	if _, err := os.Stat("/etc/switchboard/switchboard.key"); err == nil {
		t.Errorf("a signing key was written beside the config")
	}
}

// debRotate rotates a call log in /var/log/switchboard with the packaged
// logrotate file: the old lines move to calls.log.1, and a new calls.log
// of the switchboard user takes its place. Without logrotate it checks
// nothing.
func debRotate(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/logrotate"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("logrotate is missing (make test-deps installs it)")
		}
		t.Log("logrotate is not installed: the logrotate file is not checked")
		return
	}
	calls := "/var/log/switchboard/calls.log"
	debRun(t, "setpriv", "--reuid=switchboard", "--regid=switchboard", "--init-groups",
		"sh", "-c", "echo a call >> "+calls)
	debRun(t, "/usr/sbin/logrotate", "-f", "-s", filepath.Join(t.TempDir(), "state"), "/etc/logrotate.d/switchboard")
	if got, err := os.ReadFile(calls + ".1"); err != nil || string(got) != "a call\n" {
		t.Errorf("after logrotate: %s.1: %q, %v; want the old line", calls, got, err)
	}
	fi, err := os.Stat(calls)
	if err != nil {
		t.Fatalf("after logrotate: %v", err)
	}
	if u, _ := user.LookupId(fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid)); u == nil || u.Username != "switchboard" || fi.Size() != 0 {
		t.Errorf("after logrotate: %s is owned by %v with %d bytes; want an empty file of switchboard", calls, u, fi.Size())
	}
}
