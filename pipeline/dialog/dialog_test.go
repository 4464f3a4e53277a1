package dialog

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/internal/redistest"
)

func TestTargetKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"sip:alice@192.0.2.1:5060", "sip:alice@192.0.2.1", true},
		{"sip:alice@Host.Example.org", "sip:alice@host.example.org:5060;transport=udp", true},
		{"sip:alice@192.0.2.1;ob;line=7", "sip:alice@192.0.2.1", true},
		{"sips:alice@192.0.2.1", "sips:alice@192.0.2.1:5061", true},
		{"sip:alice@[2001:db8::1]:5070", "sip:alice@[2001:db8::1]:5070", true},
		{"sip:alice@192.0.2.1", "sip:+19005550100@192.0.2.1", false},
		{"sip:alice@192.0.2.1", "sip:alice@192.0.2.2", false},
		{"sip:alice@192.0.2.1", "sip:alice@192.0.2.1:5070", false},
		{"sip:alice@192.0.2.1;transport=tcp", "sip:alice@192.0.2.1", false},
		{"sip:alice@192.0.2.1", "sips:alice@192.0.2.1", false},
	}
	for i, tc := range tests {
		var a, b sip.Uri
		if err := sip.ParseUri(tc.a, &a); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if err := sip.ParseUri(tc.b, &b); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if got := TargetKey(&a) == TargetKey(&b); got != tc.same {
			t.Errorf("test %d: %q (%s) and %q (%s): same %v, want %v", i, tc.a, TargetKey(&a), tc.b, TargetKey(&b), got, tc.same)
		}
	}
	if TargetKey(nil) != "" || TargetKey(&sip.Uri{}) != "" {
		t.Errorf("no URI, or one without a host, must have no key")
	}
}

func TestEndRefresh(t *testing.T) {
	e := End{Target: "a"}
	if e.Refresh("") || e.Refresh("a") {
		t.Fatalf("no Contact, or the same one, changed the end: %+v", e)
	}
	if !e.Refresh("b") || e.Target != "b" || e.Previous != "a" {
		t.Fatalf("after a refresh to b: %+v, want target b, previous a", e)
	}
	for _, target := range []string{"a", "b"} {
		if !e.Reaches(target) {
			t.Errorf("%+v does not reach %q", e, target)
		}
	}
	if e.Reaches("c") || e.Reaches("") {
		t.Errorf("%+v reaches what it never was", e)
	}
}

// conformance runs what every Store must do.
func conformance(t *testing.T, s Store) {
	t.Helper()
	now := time.Now()
	id := ID{CallID: "c1@test", CallerTag: "a", CalleeTag: "b"}
	d := Dialog{
		Caller:    End{Target: "sip:caller@192.0.2.1:5060;transport=udp", Source: netip.MustParseAddr("192.0.2.1")},
		Callee:    End{Target: "sip:alice@192.0.2.2:5060;transport=udp", Next: "sip:192.0.2.9:5060;transport=udp", Source: netip.MustParseAddr("192.0.2.2")},
		Confirmed: true,
		Expires:   now.Add(time.Hour),
	}
	if _, ok, err := s.Get(id, now); ok || err != nil {
		t.Fatalf("Get of an unknown dialog: %v, %v", ok, err)
	}
	if err := s.Replace(id, d, now); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(id, now); ok {
		t.Fatalf("Replace brought in a dialog the store did not have")
	}
	if err := s.Put(id, d, now); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(id, now)
	if !ok || err != nil || got.Caller != d.Caller || got.Callee != d.Callee || !got.Confirmed || !got.Expires.Equal(d.Expires) {
		t.Fatalf("Get after Put: %+v %v %v, want %+v", got, ok, err, d)
	}
	if _, ok, _ := s.Get(ID{CallID: id.CallID, CallerTag: id.CalleeTag, CalleeTag: id.CallerTag}, now); ok {
		t.Fatalf("the dialog was found with its tags swapped")
	}
	d.Callee.Refresh("sip:alice@192.0.2.3:5060;transport=udp")
	if err := s.Replace(id, d, now); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Get(id, now); got.Callee != d.Callee {
		t.Fatalf("after Replace: callee %+v, want %+v", got.Callee, d.Callee)
	}
	if _, ok, _ := s.Get(id, d.Expires); ok {
		t.Fatalf("the dialog was found when it expired")
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(id, now); ok {
		t.Fatalf("the dialog was found after Delete")
	}
	if err := s.Replace(id, d, now); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(id, now); ok {
		t.Fatalf("Replace brought back a deleted dialog")
	}
}

func TestMemory(t *testing.T) {
	conformance(t, NewMemory())
}

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	s, err := NewRedis(srv.URL(), "test:", "k1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conformance(t, s)

	// Two instances with one key share the dialogs; another key does not
	// see them.
	other, _ := NewRedis(srv.URL(), "test:", "k1")
	defer other.Close()
	stranger, _ := NewRedis(srv.URL(), "test:", "k2")
	defer stranger.Close()
	now := time.Now()
	id := ID{CallID: "shared@test", CallerTag: "a", CalleeTag: "b"}
	if err := s.Put(id, Dialog{Confirmed: true, Expires: now.Add(time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := other.Get(id, now); !ok {
		t.Errorf("an instance with the same key does not see the dialog")
	}
	if _, ok, _ := stranger.Get(id, now); ok {
		t.Errorf("an instance with another key sees the dialog")
	}
	if err := other.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(id, now); ok {
		t.Errorf("a dialog ended by one instance is still known to the other")
	}
}

func TestMemorySweep(t *testing.T) {
	m := NewMemory()
	now := time.Now()
	m.Put(ID{CallID: "old"}, Dialog{Expires: now.Add(time.Second)}, now)
	m.Put(ID{CallID: "new"}, Dialog{Expires: now.Add(time.Hour)}, now)
	if n := m.Sweep(now.Add(time.Minute)); n != 1 || m.Len() != 1 {
		t.Errorf("Sweep: %d swept, %d left; want 1 and 1", n, m.Len())
	}
	m.Put(ID{CallID: "old"}, Dialog{Expires: now.Add(time.Second)}, now)
	if n := m.Sweep(now.Add(time.Minute + time.Second)); n != 0 {
		t.Errorf("a second Sweep within %v walked the dialogs (%d swept)", sweepEvery, n)
	}
}

// TestMemoryFile: a Memory with a file keeps its dialogs from a Close to
// the next open, forgets the expired ones, and removes the file once read,
// so that a crash later does not bring back what ended since.
func TestMemoryFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchboard.db"+SnapshotSuffix)
	now := time.Now()
	m, err := OpenMemory(file, now)
	if err != nil {
		t.Fatal(err)
	}
	live := ID{CallID: "live", CallerTag: "a", CalleeTag: "b"}
	d := Dialog{Caller: End{Target: "x", Source: netip.MustParseAddr("::1")}, Confirmed: true, Expires: now.Add(time.Hour)}
	m.Put(live, d, now)
	m.Put(ID{CallID: "lapsing"}, Dialog{Expires: now.Add(time.Minute)}, now)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2, err := OpenMemory(file, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := m2.Get(live, now); !ok || got.Caller != d.Caller || !got.Confirmed {
		t.Errorf("after a restart: %+v %v, want %+v", got, ok, d)
	}
	if m2.Len() != 1 {
		t.Errorf("after a restart: %d dialogs, want 1 (the lapsed one forgotten)", m2.Len())
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the file is still there once read: %v", err)
	}

	if err := os.WriteFile(file, []byte("{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMemory(file, now); err == nil || !strings.Contains(err.Error(), file+":1") {
		t.Errorf("a damaged file: %v, want an error naming the file and line", err)
	}
}
