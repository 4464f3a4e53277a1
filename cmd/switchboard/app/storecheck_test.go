package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// TestMain runs the child of checkStore when the test binary is started
// as one (os.Executable is the test binary): `store check -child FILE`.
// With APP_TEST_CHILD=panic the child panics in a goroutine of its own,
// as bbolt's tx.Check can on a damaged file.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "store" {
		if os.Getenv("APP_TEST_CHILD") == "panic" {
			done := make(chan struct{})
			go func() { panic("a page that is not where the tree says") }()
			<-done
		}
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// storeFile writes a bolt file holding alice's binding and returns its
// path.
func storeFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s, err := location.NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err = s.Update("alice", now, func([]location.Binding) ([]location.Binding, error) {
		return []location.Binding{{AOR: "alice", Contact: "sip:alice@192.0.2.1", Expires: now.Add(time.Hour)}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStoreCheck(t *testing.T) {
	sound := storeFile(t)
	cut := storeFile(t)
	if err := os.Truncate(cut, 4096*3); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args  []string
		child string // APP_TEST_CHILD
		code  int
		want  string // in stdout (code 0) or stderr
	}{
		{args: []string{"check", sound}, code: 0, want: sound + ": ok: 1 AORs, 1 bindings, 0 AORs remembered without bindings"},
		{args: []string{"check", cut}, code: 1, want: cut + ": damaged: the file is 12288 bytes, shorter than"},
		{args: []string{"check", sound}, child: "panic", code: 1, want: sound + ": damaged: reading it crashed the check (exit status 2): panic: a page that is not where the tree says"},
		{args: []string{"check", filepath.Join(t.TempDir(), "none.db")}, code: 1, want: "none.db: damaged: stat "},
		{args: []string{"check"}, code: 2, want: "switchboard store check FILE"},
		{args: []string{"dump", sound}, code: 2, want: "switchboard store check FILE"},
	}
	for i, tc := range tests {
		t.Setenv("APP_TEST_CHILD", tc.child)
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"store"}, tc.args...), &stdout, &stderr)
		out := stdout.String()
		if tc.code != 0 {
			out = stderr.String()
		}
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("test %d: exit %d, output %q; want %d and %q", i, code, out, tc.code, tc.want)
		}
	}
}
