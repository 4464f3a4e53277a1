package keepalive

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// natBinding is a UDP binding of aor from behind NAT, written by REGISTER
// callID/cseq at t0.
func natBinding(aor, contact, callID string, cseq uint32) location.Binding {
	return location.Binding{AOR: aor, Contact: contact, CallID: callID, CSeq: cseq, Expires: t0.Add(time.Hour),
		Received: "192.0.2.9:40000", Transport: "UDP", NAT: true, Updated: t0}
}

// store writes bs as aor's bindings.
func store(t *testing.T, s location.Store, aor string, bs ...location.Binding) {
	t.Helper()
	if _, err := s.Update(aor, t0, func([]location.Binding) ([]location.Binding, error) { return bs, nil }); err != nil {
		t.Fatal(err)
	}
}

// natRestorer takes the NAT bindings, pinged every 4 s, silent for 10 s at
// most.
func natRestorer(b location.Binding) (Flow, bool) {
	if !b.NAT {
		return Flow{}, false
	}
	return Flow{AOR: b.AOR, Contact: b.Contact, CallID: b.CallID, CSeq: b.CSeq, Received: netip.MustParseAddrPort(b.Received),
		Expires: b.Expires, Interval: 4 * time.Second, Timeout: 10 * time.Second}, true
}

// TestRestore checks the flows rebuilt from the store after a restart:
// the bindings the restorer takes, their first pings spread over an
// interval, each pinged every interval after that.
func TestRestore(t *testing.T) {
	s := location.NewMemory()
	for _, aor := range []string{"alice", "bob", "carol", "dave"} {
		store(t, s, aor, natBinding(aor, "sip:"+aor+"@10.0.0.5:5060", "reg-"+aor, 1))
	}
	plain := natBinding("erin", "sip:erin@198.51.100.5", "reg-erin", 1)
	plain.NAT = false
	store(t, s, "erin", plain)
	p, r := newPinger(s)
	if retry := p.restore(t0); !retry.IsZero() {
		t.Fatalf("restored with no restorer: retry %v", retry)
	}
	p.Restore(natRestorer)
	if retry := p.restore(t0); !retry.IsZero() {
		t.Fatalf("retry %v", retry)
	}
	if pinged, _ := p.Flows(); len(pinged) != 4 {
		t.Fatalf("pinged %+v, want the 4 bindings behind NAT", pinged)
	}
	// Four flows, an interval of 4 s: one first ping a second.
	tests := []struct {
		at    time.Duration
		pings int
	}{
		{0, 1}, {time.Second, 2}, {2 * time.Second, 3}, {3 * time.Second, 4},
		{3900 * time.Millisecond, 4}, {4 * time.Second, 5}, {7 * time.Second, 8},
	}
	for i, tc := range tests {
		p.Tick(t0.Add(tc.at))
		if len(r.pings) != tc.pings {
			t.Errorf("test %d (at %v): %d pings, want %d", i, tc.at, len(r.pings), tc.pings)
		}
	}
	seen := map[string]bool{}
	for _, pg := range r.pings[:4] {
		seen[pg.AOR] = true
		if pg.Interval != 4*time.Second || pg.Received.String() != "192.0.2.9:40000" {
			t.Errorf("ping %+v", pg)
		}
	}
	if len(seen) != 4 {
		t.Errorf("the first pings went to %v, want each binding once", seen)
	}
	// Restored once: a binding stored since is the registrar's to add.
	store(t, s, "frank", natBinding("frank", "sip:frank@10.0.0.5:5060", "reg-frank", 1))
	p.restore(t0.Add(8 * time.Second))
	if pinged, _ := p.Flows(); len(pinged) != 4 {
		t.Errorf("restored twice: pinged %d", len(pinged))
	}
}

// TestRestoreRemoval checks that a restored flow removes its binding once
// silent for the timeout, and only the binding as its REGISTER wrote it:
// one refreshed since through another node stays.
func TestRestoreRemoval(t *testing.T) {
	s := location.NewMemory()
	store(t, s, "alice", natBinding("alice", "sip:alice@10.0.0.5:5060", "reg-1", 1))
	store(t, s, "bob", natBinding("bob", "sip:bob@10.0.0.6:5060", "reg-2", 1))
	p, r := newPinger(s)
	p.Restore(natRestorer)
	p.restore(t0)
	// Bob registers again through another node: this node is not told.
	store(t, s, "bob", natBinding("bob", "sip:bob@10.0.0.6:5060", "reg-2", 2))
	for at := time.Duration(0); at <= 12*time.Second; at += time.Second {
		p.Tick(t0.Add(at))
	}
	if bs, _, _ := s.Lookup("alice", t0.Add(12*time.Second)); len(bs) != 0 {
		t.Errorf("alice's silent binding stayed: %+v", bs)
	}
	if bs, _, _ := s.Lookup("bob", t0.Add(12*time.Second)); len(bs) != 1 || bs[0].CSeq != 2 {
		t.Errorf("bob's binding, refreshed elsewhere, was removed: %+v", bs)
	}
	if r.events["removed"] != 1 {
		t.Errorf("%d removed, want 1", r.events["removed"])
	}
}

// eachHook is a store whose Each runs a hook first, and fails while fail
// is set.
type eachHook struct {
	location.Store
	hook func()
	fail error
}

func (s *eachHook) Each(now time.Time, fn func(string, []location.Binding) bool) error {
	if s.hook != nil {
		s.hook()
	}
	if s.fail != nil {
		return s.fail
	}
	return s.Store.Each(now, fn)
}

// TestRestoreRaces checks what a restore leaves alone: a flow that a
// REGISTER made before it (with the REGISTER's settings and schedule), and
// an AOR that registered while the store was read, whose stored copy may
// be older than what the REGISTER told the Pinger.
func TestRestoreRaces(t *testing.T) {
	mem := location.NewMemory()
	alice := natBinding("alice", "sip:alice@10.0.0.5:5060", "reg-1", 1)
	bob := natBinding("bob", "sip:bob@10.0.0.6:5060", "reg-2", 1)
	store(t, mem, "alice", alice)
	store(t, mem, "bob", bob)
	s := &eachHook{Store: mem}
	p, _ := newPinger(s)
	// Alice registered before the restore, with a 30 s interval.
	p.Sync("alice", []location.Binding{alice}, []Flow{{Contact: alice.Contact, CallID: "reg-1", CSeq: 1, Expires: alice.Expires, Interval: 30 * time.Second, Timeout: time.Minute}}, t0)
	// Bob unregisters while the store is read.
	s.hook = func() { p.Sync("bob", nil, nil, t0) }
	p.Restore(natRestorer)
	p.restore(t0)
	pinged, _ := p.Flows()
	if len(pinged) != 1 || pinged[0].AOR != "alice" || pinged[0].Interval != 30 {
		t.Errorf("pinged %+v, want alice's flow as her REGISTER made it", pinged)
	}
}

// TestRestoreRetry checks that a store that cannot be read (a Redis not
// up yet) is read again every restoreRetry until it can, and that the
// newest restorer offered and not withdrawn is the one used.
func TestRestoreRetry(t *testing.T) {
	mem := location.NewMemory()
	store(t, mem, "alice", natBinding("alice", "sip:alice@10.0.0.5:5060", "reg-1", 1))
	s := &eachHook{Store: mem, fail: errors.New("connection refused")}
	p, _ := newPinger(s)
	used := ""
	offer := func(name string) func() {
		return p.Restore(func(b location.Binding) (Flow, bool) { used = name; return natRestorer(b) })
	}
	offer("first")
	withdraw := offer("second")
	if retry := p.restore(t0); !retry.Equal(t0.Add(restoreRetry)) {
		t.Errorf("retry at %v, want %v", retry, t0.Add(restoreRetry))
	}
	if retry := p.restore(t0.Add(time.Second)); !retry.Equal(t0.Add(restoreRetry)) {
		t.Errorf("read again before the retry: next retry %v", retry)
	}
	s.fail = nil
	withdraw()
	if retry := p.restore(t0.Add(restoreRetry)); !retry.IsZero() {
		t.Errorf("retry %v after the store came back", retry)
	}
	if pinged, _ := p.Flows(); len(pinged) != 1 || used != "first" {
		t.Errorf("pinged %+v by the restorer %q, want one by the first (the second was withdrawn)", pinged, used)
	}
}
