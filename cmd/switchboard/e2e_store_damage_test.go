package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/location/locationtest"
)

// damagedStoreAORs is how many AORs the damaged stores hold: a file of
// about 4 MB.
const damagedStoreAORs = 4000

// TestDamagedStoreRefused starts the proxy on bolt files damaged in the
// ways a disk or a wrong command damages them: each start must end with
// exit 1 and an error that names the file and what to do, never with a
// crash (a truncated or overwritten file crashed it with SIGSEGV or a
// bbolt panic, exit 2).
func TestDamagedStoreRefused(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	tests := []struct {
		name   string
		damage func(path string) error
		want   string
	}{
		{"half", locationtest.CutHalf, "is damaged"},
		{"garbage-1", func(path string) error { return locationtest.Garbage(path, 1, 20) }, "is damaged"},
		{"garbage-2", func(path string) error { return locationtest.Garbage(path, 2, 20) }, "is damaged"},
		{"garbage-3", func(path string) error { return locationtest.Garbage(path, 3, 20) }, "is damaged"},
		{"meta", func(path string) error { return locationtest.Overwrite(path, 1, 0, 1) }, "is damaged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "switchboard.db")
			writeStore(t, db, damagedStoreAORs)
			if err := tc.damage(db); err != nil {
				t.Fatal(err)
			}
			code, out := runToExit(t, storeConfig(db))
			if code != 1 {
				t.Fatalf("exit code %d, want 1\n%s", code, tail(out, 3000))
			}
			for _, want := range []string{db, tc.want, "aside"} {
				if !strings.Contains(out, want) {
					t.Errorf("output does not say %q\n%s", want, tail(out, 3000))
				}
			}
		})
	}
}

// TestEmptiedStoreRefused runs the proxy on a store, then empties or
// removes the file: the next start refuses, naming the file and the marker
// that says a store was there, where it started empty without a word. The
// operator's answer (removing the marker) starts it empty.
func TestEmptiedStoreRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"empty", "missing"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "switchboard.db")
			config := storeConfig(db)
			stopProxy(t, startProxy(t, config))
			if name == "empty" {
				if err := os.Truncate(db, 0); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(db); err != nil {
				t.Fatal(err)
			}
			code, out := runToExit(t, config)
			if code != 1 {
				t.Fatalf("exit code %d, want 1\n%s", code, tail(out, 3000))
			}
			marker := db + ".exists"
			for _, want := range []string{db, marker, "level=ERROR"} {
				if !strings.Contains(out, want) {
					t.Errorf("output does not say %q\n%s", want, tail(out, 3000))
				}
			}
			if err := os.Remove(marker); err != nil {
				t.Fatal(err)
			}
			startProxy(t, config)
		})
	}
}

// TestStoreRecovery damages a store that a proxy ran on, and recovers it
// as docs/operations.md says: the copy the proxy kept passes `store
// check`, the damaged file does not, and the proxy starts on the copy with
// its registrations.
func TestStoreRecovery(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "switchboard.db")
	writeStore(t, db, damagedStoreAORs)
	config := storeConfig(db)
	stopProxy(t, startProxy(t, config))
	if err := locationtest.Garbage(db, 4, 20); err != nil {
		t.Fatal(err)
	}

	code, out := runBin(t, "store", "check", db)
	if code != 1 || !strings.Contains(out, db) {
		t.Errorf("store check of the damaged file: exit %d, want 1 and the file named\n%s", code, out)
	}
	backup := db + ".1"
	code, out = runBin(t, "store", "check", backup)
	want := fmt.Sprintf("%s: ok: %d AORs, %d bindings", backup, damagedStoreAORs, damagedStoreAORs)
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("store check of the copy: exit %d, want 0 and %q\n%s", code, want, out)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, config)
	if !p.logSays(fmt.Sprintf("aors=%d", damagedStoreAORs), 5*time.Second) {
		t.Errorf("the proxy started on the copy does not log its %d AORs", damagedStoreAORs)
	}
}

// stopProxy stops p gracefully, as its cleanup would, and checks that it
// exits with 0.
func stopProxy(t *testing.T, p *proxy) {
	t.Helper()
	p.stop(t)
	p.killed = true // stopped on purpose: the cleanup's stop finds it gone
}

// storeConfig returns a test config that keeps its bolt store at db.
func storeConfig(db string) string {
	return testConfig() + fmt.Sprintf("\n[store]\nbackend = \"bolt\"\npath = %q\n", db)
}

// runToExit starts the proxy with config and returns its exit code and
// output; a proxy that is still running after readyTimeout fails the test.
func runToExit(t *testing.T, config string) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return runBin(t, "-config", path, "-watch=false", "-listen", fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP)))
}

// runBin runs the switchboard binary with args until it exits, and returns
// its exit code (-1 when a signal ended it) and output.
func runBin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	requireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, switchboardBin, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("switchboard %s still ran after %v\n%s", strings.Join(args, " "), readyTimeout, tail(string(out), 3000))
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatal(err)
	return 0, ""
}

// writeStore writes a bolt store at path with n AORs of one binding each,
// as the proxy stores them.
func writeStore(t *testing.T, path string, n int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	expires := time.Now().Add(time.Hour)
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("aors"))
		if err != nil {
			return err
		}
		for i := range n {
			aor := fmt.Sprintf("user%05d", i)
			data, err := json.Marshal(map[string][]location.Binding{"bindings": {{
				AOR: aor, Contact: fmt.Sprintf("sip:%s@192.0.2.%d:5060;transport=udp", aor, i%250),
				Params: `+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000000>";reg-id=1`,
				CallID: fmt.Sprintf("%032d@phone", i), CSeq: 1, Expires: expires,
				Received: "192.0.2.1:5060", Transport: "UDP", Updated: time.Now(),
			}}})
			if err != nil {
				return err
			}
			if err := b.Put([]byte(aor), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
