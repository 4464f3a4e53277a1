package location

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-sip/switchboard/pipeline/location/locationtest"
)

// testStoreFile writes a closed bolt file with aors AORs of one binding
// each, then "gone", an AOR remembered without bindings, and returns its
// path.
func testStoreFile(t *testing.T, aors int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s, err := NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for i := range aors {
			aor := fmt.Sprintf("user%05d", i)
			b := binding(fmt.Sprintf("sip:%s@192.0.2.%d:5060", aor, i%250), time.Hour)
			b.CallID, b.Received, b.Transport = fmt.Sprintf("%032d@phone", i), "192.0.2.1:5060", "UDP"
			r := &record{bindings: []Binding{b}}
			if err := s.put(tx, aor, r); err != nil {
				return err
			}
			if err := refile(tx, aor, -1, r.due()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, "gone", t0, set(binding("sip:gone@1", time.Hour)))
	mustUpdate(t, s, "gone", t0, set())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// damaged returns a damage of locationtest as a test's step.
func damaged(fn func(path string) error) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := fn(path); err != nil {
			t.Fatal(err)
		}
	}
}

// garbage writes 20 pages of random bytes, seeded by seed, over the file.
func garbage(seed uint64) func(t *testing.T, path string) {
	return damaged(func(path string) error { return locationtest.Garbage(path, seed, 20) })
}

// putRaw puts value under key in bucket of the closed bolt file at path,
// as only damage or another program would.
func putRaw(t *testing.T, path string, bucket []byte, key, value string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckBolt(t *testing.T) {
	const aors = 4000 // a file of about 4 MB
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string)
		wantErr string
	}{
		{name: "sound", damage: func(*testing.T, string) {}},
		{name: "empty", damage: damaged(func(path string) error { return os.Truncate(path, 0) }), wantErr: "the file is empty"},
		{name: "missing", damage: damaged(os.Remove), wantErr: "no such file"},
		{name: "half", damage: damaged(locationtest.CutHalf), wantErr: "it was cut short"},
		{name: "meta pages", damage: damaged(func(path string) error { return locationtest.Overwrite(path, 1, 0, 1) }),
			wantErr: "its meta pages are damaged"},
		{name: "garbage 1", damage: garbage(1), wantErr: "reading it failed"},
		{name: "garbage 2", damage: garbage(2), wantErr: "reading it failed"},
		{name: "garbage 3", damage: garbage(3), wantErr: "reading it failed"},
		{name: "record", damage: func(t *testing.T, path string) { putRaw(t, path, bucketAORs, "mallory", "{not json") },
			wantErr: `the record of "mallory" does not decode`},
		{name: "due key", damage: func(t *testing.T, path string) { putRaw(t, path, bucketDue, "abc", "") },
			wantErr: "the due key 616263 is shorter than 8 bytes"},
	}
	sound := testStoreFile(t, aors)
	data, err := os.ReadFile(sound)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tc.damage(t, path)
		sum, err := CheckBolt(path)
		if tc.wantErr == "" {
			if want := (Summary{AORs: aors, Bindings: aors, Remembered: 1}); err != nil || sum != want {
				t.Errorf("test %d (%s): %+v, %v; want %+v", i, tc.name, sum, err, want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("test %d (%s): error %v, want one that says %q", i, tc.name, err, tc.wantErr)
		}
	}
}

// TestCheckBoltLocked checks a file that a running store holds: the check
// says so rather than wait.
func TestCheckBoltLocked(t *testing.T) {
	s := newTestBolt(t)
	if _, err := CheckBolt(s.path); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("error %v, want one that says the file is locked", err)
	}
}
