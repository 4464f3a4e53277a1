package location

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBoltBackup keeps a copy after each new AOR: FILE.1 is the newest,
// each older one moves up, the oldest past Copies is dropped, and each
// copy passes the check with the AORs of its time.
func TestBoltBackup(t *testing.T) {
	s := newTestBolt(t)
	if kept, sum, err := s.Backup(CheckBolt); kept != "" || sum.Records() != 0 || err != nil {
		t.Errorf("backup of an empty store: %q, %+v, %v; want nothing kept", kept, sum, err)
	}
	if exists(copyName(s.path, 1)) {
		t.Errorf("%s exists after the backup of an empty store", copyName(s.path, 1))
	}
	const rounds = Copies + 2
	for n := 1; n <= rounds; n++ {
		mustUpdate(t, s, fmt.Sprintf("user%d", n), t0, set(binding("sip:u@1", time.Hour)))
		kept, sum, err := s.Backup(CheckBolt)
		if err != nil || kept != copyName(s.path, 1) || sum.AORs != n {
			t.Fatalf("backup %d: %q, %+v, %v; want %s with %d AORs", n, kept, sum, err, copyName(s.path, 1), n)
		}
	}
	for i := 1; i <= Copies; i++ {
		sum, err := CheckBolt(copyName(s.path, i))
		if want := rounds + 1 - i; err != nil || sum.AORs != want {
			t.Errorf("copy %d: %+v, %v; want %d AORs", i, sum, err, want)
		}
	}
	for _, name := range []string{copyName(s.path, Copies+1), s.path + ".new"} {
		if exists(name) {
			t.Errorf("%s exists, want it gone", name)
		}
	}
}

// TestBoltBackupFailsCheck keeps the copies there are when a new copy
// fails the check.
func TestBoltBackupFailsCheck(t *testing.T) {
	s := newTestBolt(t)
	mustUpdate(t, s, "alice", t0, set(binding("sip:a@1", time.Hour)))
	if _, _, err := s.Backup(CheckBolt); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(copyName(s.path, 1))
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, "bob", t0, set(binding("sip:b@1", time.Hour)))
	failing := func(string) (Summary, error) { return Summary{}, errors.New("page 7: unreachable unfreed") }
	kept, _, err := s.Backup(failing)
	if kept != "" || err == nil || !strings.Contains(err.Error(), "fails the check, the store may be damaged: page 7") {
		t.Errorf("backup: %q, %v; want no copy and the check's error", kept, err)
	}
	after, _ := os.ReadFile(copyName(s.path, 1))
	if string(after) != string(before) {
		t.Errorf("%s changed after a copy that failed the check", copyName(s.path, 1))
	}
	for _, name := range []string{copyName(s.path, 2), s.path + ".new"} {
		if exists(name) {
			t.Errorf("%s exists, want it gone", name)
		}
	}
}

// exists reports whether path names a file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
