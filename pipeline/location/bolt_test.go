package location

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// newTestBolt opens a Bolt in a new file of t's temporary directory.
func newTestBolt(t *testing.T) *Bolt {
	t.Helper()
	s, err := NewBolt(filepath.Join(t.TempDir(), "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBoltConformance(t *testing.T) {
	runStoreTests(t, func(t *testing.T) Store { return newTestBolt(t) })
}

// TestBoltReopen checks that closing and opening the file again restores
// every live binding with its expiry, and the tombstones.
func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s, err := NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	a := binding("sip:a@1", time.Hour)
	a.Path = []string{"<sip:edge1;lr>"}
	a.Received, a.Transport, a.CallID, a.CSeq = "192.0.2.1:5060", "UDP", "call-1", 7
	mustUpdate(t, s, "alice", t0, set(a, binding("sip:a@2", 2*time.Hour)))
	mustUpdate(t, s, "bob", t0, set(binding("sip:b@1", time.Hour)))
	mustUpdate(t, s, "bob", t0.Add(time.Minute), set())
	mustUpdate(t, s, "carol", t0, set(binding("sip:c@1", time.Minute)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, known, err := s.Lookup("alice", t0.Add(time.Minute))
	if err != nil || !known || len(got) != 2 {
		t.Fatalf("alice after reopening: %+v, %v, %v; want 2 bindings", got, known, err)
	}
	a.AOR = "alice"
	if !sameBinding(got[0], a) || got[1].Contact != "sip:a@2" || !got[1].Expires.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("alice after reopening: %+v", got)
	}
	if got, _, _ := s.Lookup("alice", t0.Add(90*time.Minute)); len(got) != 1 {
		t.Errorf("alice after reopening, 90 minutes on: %+v, want only sip:a@2", got)
	}
	if got, known, _ := s.Lookup("bob", t0.Add(time.Hour)); len(got) != 0 || !known {
		t.Errorf("bob after reopening: %+v, known %v; want none, known", got, known)
	}
	// The count is read from the file: alice, and carol until a sweep.
	if n, _ := s.AORs(t0.Add(time.Minute)); n != 2 {
		t.Errorf("AORs after reopening = %d, want 2 (alice and carol)", n)
	}
	s.Sweep(t0.Add(time.Minute))
	if n, _ := s.AORs(t0.Add(time.Minute)); n != 1 {
		t.Errorf("AORs after reopening and a sweep = %d, want 1 (alice)", n)
	}
}

// TestBoltSurvivesKill kills -9 a process right after its Update returned
// and finds the binding in the file: nothing waits for Close.
func TestBoltSurvivesKill(t *testing.T) {
	if path := os.Getenv("SWITCHBOARD_BOLT_HELPER"); path != "" {
		// The child: write, say so, and wait to be killed.
		s, err := NewBolt(path)
		if err != nil {
			os.Exit(2)
		}
		if _, err := s.Update("alice", t0, set(binding("sip:a@1", time.Hour))); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("written\n")
		time.Sleep(time.Minute)
		os.Exit(4)
	}
	path := filepath.Join(t.TempDir(), "switchboard.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltSurvivesKill$")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_BOLT_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if line != "written\n" {
		t.Fatalf("child said %q, want written", line)
	}
	s, err := NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _, err := s.Lookup("alice", t0)
	if err != nil || len(got) != 1 || got[0].Contact != "sip:a@1" {
		t.Errorf("after kill -9: %+v, %v; want sip:a@1", got, err)
	}
}

func TestBoltOpenErrors(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked.db")
	s, err := NewBolt(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	notBolt := filepath.Join(dir, "config.toml")
	text := strings.Repeat("[[stage]]\nuse = \"forward\"\n", 1000)
	if err := os.WriteFile(notBolt, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.db")
	if err := os.WriteFile(short, []byte("not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string
	}{
		{locked, "location store " + locked + " is locked by another process"},
		{notBolt, "location store " + notBolt + " is not a bbolt database"},
		{short, "location store " + short + " is not a bbolt database"},
		{filepath.Join(dir, "missing", "x.db"), "location store " + filepath.Join(dir, "missing", "x.db") + ": "},
	}
	for i, tc := range tests {
		start := time.Now()
		s, err := NewBolt(tc.path)
		if err == nil {
			s.Close()
			t.Errorf("test %d: NewBolt(%s) succeeded, want an error", i, tc.path)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("test %d: error %q, want it to start with %q", i, err, tc.want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("test %d: NewBolt took %v", i, d)
		}
	}
	// The failed opens left the files as they were.
	if data, _ := os.ReadFile(notBolt); string(data) != text {
		t.Errorf("%s was changed", notBolt)
	}
}

// checkBoltDue fails unless the due bucket files every record of s under
// its due second, and nothing else.
func checkBoltDue(t *testing.T, s *Bolt) {
	t.Helper()
	want := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := s.each(tx, func(aor string, r *record) { want[string(dueKey(r.due(), aor))] = true }); err != nil {
			return err
		}
		return tx.Bucket(bucketDue).ForEach(func(k, _ []byte) error {
			if !want[string(k)] {
				t.Errorf("due bucket files %q under %d, which is not its record's due", k[8:], binary.BigEndian.Uint64(k))
			}
			delete(want, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range want {
		t.Errorf("%q is not filed under its due second %d", k[8:], binary.BigEndian.Uint64([]byte(k)))
	}
}

// TestBoltHeldIsCount checks Held against Count, and the due bucket,
// through random writes and sweeps.
func TestBoltHeldIsCount(t *testing.T) {
	s := newTestBolt(t)
	holderWalk(t, s, func() { checkBoltDue(t, s) })
}

// TestBoltFilesOldFile checks that a file written before the due bucket
// existed is filed when opened: its records are then swept when due.
func TestBoltFilesOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s, err := NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, "alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
	mustUpdate(t, s, "bob", t0, set(binding("sip:b@1", time.Minute)))
	mustUpdate(t, s, "carol", t0, set(binding("sip:c@1", time.Minute)))
	mustUpdate(t, s, "carol", t0, set()) // a tombstone
	// Make it a file of before: no due bucket.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketDue) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkBoltDue(t, s)
	if aors, bindings := s.Held(); aors != 2 || bindings != 3 {
		t.Errorf("Held() = %d, %d after opening, want 2, 3", aors, bindings)
	}
	if n := s.Sweep(t0.Add(90 * time.Minute)); n != 2 {
		t.Errorf("sweep at 90 minutes removed %d bindings, want 2 (bob's, alice's first)", n)
	}
	if n := s.Sweep(t0.Add(25 * time.Hour)); n != 1 {
		t.Errorf("sweep at 25 hours removed %d bindings, want 1 (alice's second)", n)
	}
	checkBoltDue(t, s)
	if _, known, _ := s.Lookup("carol", t0.Add(25*time.Hour)); known {
		t.Error("carol still known after her tombstone ended and a sweep ran")
	}
}

// TestBoltGroupCommit checks that Updates that wait for the writer are
// committed together, in order, and that a write whose fn fails fails
// alone: the others of its transaction are stored, and each write sees
// those before it in the same transaction.
func TestBoltGroupCommit(t *testing.T) {
	s := newTestBolt(t)
	// Hold bbolt's write lock, so that the writer waits with its first
	// write and the others queue behind it.
	locked, release := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bolt.Tx) error {
		close(locked)
		<-release
		return errNoChange
	})
	<-locked
	errRefused := errors.New("refused")
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			aor := fmt.Sprint("u", i)
			fn := set(binding(fmt.Sprint("sip:u@", i), time.Hour))
			switch {
			case i%4 == 3:
				fn = func([]Binding) ([]Binding, error) { return nil, errRefused }
			case i%4 == 2: // every tenth write adds to one AOR's bindings
				aor = "shared"
				fn = func(current []Binding) ([]Binding, error) {
					return append(current, binding(fmt.Sprint("sip:shared@", i), time.Hour)), nil
				}
			}
			_, errs[i] = s.Update(aor, t0, fn)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for int(s.taken.Load())+len(s.writes) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, %d writes taken and %d waiting, want %d in all", s.taken.Load(), len(s.writes), n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if c := s.commits.Load(); c > 2 {
		t.Errorf("%d transactions for %d writes, want at most 2 (the first write's, then the rest)", c, n)
	}
	for i, err := range errs {
		if i%4 == 3 {
			if !errors.Is(err, errRefused) {
				t.Errorf("write %d: %v, want fn's error", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for i := range n {
		got, known, err := s.Lookup(fmt.Sprint("u", i), t0)
		if want := i%4 < 2; err != nil || known != want || len(got) != map[bool]int{true: 1}[want] {
			t.Errorf("u%d: %d bindings, known %v, %v; want known %v", i, len(got), known, err, want)
		}
	}
	if got, _, _ := s.Lookup("shared", t0); len(got) != n/4 {
		t.Errorf("shared has %d bindings, want %d: a write lost another of its transaction's", len(got), n/4)
	}
	if aors, bindings := s.Held(); aors != n/2+1 || bindings != n/2+n/4 {
		t.Errorf("Held() = %d, %d, want %d, %d", aors, bindings, n/2+1, n/2+n/4)
	}
	checkBoltDue(t, s)
}

// TestBoltUpdateAfterClose checks that an Update after Close fails rather
// than waits.
func TestBoltUpdateAfterClose(t *testing.T) {
	s, err := NewBolt(filepath.Join(t.TempDir(), "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update("alice", t0, set(binding("sip:a@1", time.Hour))); err == nil {
		t.Error("Update after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
