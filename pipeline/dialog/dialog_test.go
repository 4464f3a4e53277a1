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

// put stores d under id, as a new dialog.
func put(t *testing.T, s Store, id ID, d Dialog, now time.Time) {
	t.Helper()
	if err := s.Update(id, now, func(stored *Dialog, _ bool) bool { *stored = d; return true }); err != nil {
		t.Fatal(err)
	}
}

// conformance runs what every Store must do.
func conformance(t *testing.T, s Store) {
	t.Helper()
	now := time.Now()
	id := NewID("c1@test", "b", "a")
	d := Dialog{
		CallerTag: "b",
		Caller:    End{Target: "sip:caller@192.0.2.1:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.1:5060"), Transport: "UDP"},
		Callee:    End{Target: "sip:alice@192.0.2.2:5060;transport=udp", Next: "sip:192.0.2.9:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.9:5070"), Transport: "TCP"},
		Confirmed: true,
		Expires:   now.Add(time.Hour),
	}
	if _, ok, err := s.Get(id, now); ok || err != nil {
		t.Fatalf("Get of an unknown dialog: %v, %v", ok, err)
	}
	if err := s.Update(id, now, func(_ *Dialog, found bool) bool {
		if found {
			t.Errorf("Update found a dialog the store does not have")
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(id, now); ok {
		t.Fatalf("an Update whose fn returned false stored a dialog")
	}
	put(t, s, id, d, now)
	got, ok, err := s.Get(NewID("c1@test", "a", "b"), now)
	if !ok || err != nil || got.CallerTag != "b" || got.Caller != d.Caller || got.Callee != d.Callee || !got.Confirmed || !got.Expires.Equal(d.Expires) {
		t.Fatalf("Get after Update, tags in the other order: %+v %v %v, want %+v", got, ok, err, d)
	}
	if sender, receiver := got.Ends("a"); sender != &got.Callee || receiver != &got.Caller {
		t.Errorf("Ends of the callee's tag: not callee to caller")
	}
	if err := s.Update(id, now, func(stored *Dialog, found bool) bool {
		return found && stored.Callee.Refresh("sip:alice@192.0.2.3:5060;transport=udp")
	}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Get(id, now); got.Callee.Target != "sip:alice@192.0.2.3:5060;transport=udp" || got.Callee.Previous != d.Callee.Target || got.Caller != d.Caller {
		t.Fatalf("after a refresh of the callee: %+v", got)
	}
	if _, ok, _ := s.Get(id, d.Expires); ok {
		t.Fatalf("the dialog was found when it expired")
	}
	if err := s.Update(id, d.Expires, func(_ *Dialog, found bool) bool {
		if found {
			t.Errorf("Update found the dialog when it expired")
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(id, now); ok {
		t.Fatalf("the dialog was found after Delete")
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
	id := NewID("shared@test", "a", "b")
	put(t, s, id, Dialog{Confirmed: true, Expires: now.Add(time.Minute)}, now)
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
	put(t, m, ID{CallID: "old"}, Dialog{Expires: now.Add(time.Second)}, now)
	put(t, m, ID{CallID: "new"}, Dialog{Expires: now.Add(time.Hour)}, now)
	if n := m.Sweep(now.Add(time.Minute)); n != 1 || m.Len() != 1 {
		t.Errorf("Sweep: %d swept, %d left; want 1 and 1", n, m.Len())
	}
	put(t, m, ID{CallID: "old"}, Dialog{Expires: now.Add(time.Second)}, now)
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
	live := NewID("live", "a", "b")
	d := Dialog{CallerTag: "a", Caller: End{Target: "x", Addr: netip.MustParseAddrPort("[::1]:5060"), Transport: "UDP"}, Confirmed: true, Expires: now.Add(time.Hour)}
	put(t, m, live, d, now)
	put(t, m, ID{CallID: "lapsing"}, Dialog{Expires: now.Add(time.Minute)}, now)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2, err := OpenMemory(file, now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := m2.Get(live, now); !ok || got.Caller != d.Caller || got.CallerTag != "a" || !got.Confirmed {
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
