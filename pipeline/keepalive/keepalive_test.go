package keepalive

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// recorder is a Pinger's network and counters.
type recorder struct {
	pings  []Ping
	events map[string]int
}

func newPinger(store location.Store) (*Pinger, *recorder) {
	r := &recorder{events: map[string]int{}}
	p := New(func() location.Store { return store }, func(pg Ping) error { r.pings = append(r.pings, pg); return nil },
		func(ev string) { r.events[ev]++ }, slog.New(slog.DiscardHandler))
	return p, r
}

// bind stores alice's binding of contact, as REGISTER callID/cseq wrote it,
// and tells p to ping it.
func bind(t *testing.T, store location.Store, p *Pinger, contact, callID string, cseq uint32, at time.Time) location.Binding {
	t.Helper()
	b := location.Binding{AOR: "alice", Contact: contact, CallID: callID, CSeq: cseq, Expires: at.Add(time.Hour), Received: "192.0.2.9:40000", Transport: "UDP", Updated: at}
	bs, err := store.Update("alice", at, func(cur []location.Binding) ([]location.Binding, error) {
		out := []location.Binding{b}
		for _, c := range cur {
			if c.Contact != contact {
				out = append(out, c)
			}
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f := Flow{Contact: contact, CallID: callID, CSeq: cseq, Received: netip.MustParseAddrPort(b.Received), Expires: b.Expires, Interval: 2 * time.Second, Timeout: 5 * time.Second}
	p.Sync("alice", bs, []Flow{f}, at)
	return b
}

// TestPinger follows one binding through its pings: one every interval,
// answers of any kind keeping it, and its removal once silent for the
// timeout.
func TestPinger(t *testing.T) {
	store := location.NewMemory()
	p, r := newPinger(store)
	bind(t, store, p, "sip:alice@10.0.0.5:5060", "reg-1", 1, t0)

	tests := []struct {
		at      time.Duration
		answer  bool // answer the last ping first
		pings   int  // pings sent so far
		bound   bool // the binding is still stored
		removed int
	}{
		{at: time.Second, pings: 0, bound: true},
		{at: 2 * time.Second, pings: 1, bound: true},
		{at: 3 * time.Second, answer: true, pings: 1, bound: true},
		{at: 4 * time.Second, pings: 2, bound: true},
		{at: 6 * time.Second, pings: 3, bound: true},
		// Heard last at 3 s: at 8 s it has been silent 5 s.
		{at: 8 * time.Second, pings: 3, bound: false, removed: 1},
		{at: 20 * time.Second, pings: 3, bound: false, removed: 1},
	}
	for i, tc := range tests {
		now := t0.Add(tc.at)
		if tc.answer {
			if !p.Answered(r.pings[len(r.pings)-1].Branch, now) {
				t.Fatalf("test %d: the ping's branch is not known as one", i)
			}
		}
		p.Tick(now)
		bs, _, _ := store.Lookup("alice", now)
		if len(r.pings) != tc.pings || (len(bs) == 1) != tc.bound || r.events["removed"] != tc.removed {
			t.Errorf("test %d (at %v): %d pings, bindings %v, %d removed; want %d, bound %v, %d", i, tc.at, len(r.pings), bs, r.events["removed"], tc.pings, tc.bound, tc.removed)
		}
	}
	pg := r.pings[0]
	if pg.Received.String() != "192.0.2.9:40000" || pg.Contact != "sip:alice@10.0.0.5:5060" || !strings.HasPrefix(pg.Branch, BranchPrefix) || pg.Seq != 1 || r.pings[1].Seq != 2 || r.pings[1].CallID != pg.CallID {
		t.Errorf("pings %+v", r.pings)
	}
	if pinged, removed := p.Flows(); len(pinged) != 0 || len(removed) != 1 || removed[0].Unanswered != 2 || removed[0].LastAnswer != t0.Add(3*time.Second) {
		t.Errorf("flows %+v, removed %+v", pinged, removed)
	}
	if p.Answered("z9hG4bK-other", t0) {
		t.Error("a branch not a ping's taken as one")
	}
}

// TestPingerSync checks which flows a REGISTER leaves pinged: a refresh
// keeps one, a binding written since by another REGISTER (through another
// node) or removed is pinged no more, and a binding whose REGISTER was
// refreshed elsewhere is never removed for this node's silence.
func TestPingerSync(t *testing.T) {
	store := location.NewMemory()
	p, r := newPinger(store)
	b := bind(t, store, p, "sip:alice@10.0.0.5:5060", "reg-1", 1, t0)
	other := bind(t, store, p, "sip:alice@10.0.0.6:5060", "reg-2", 1, t0)
	if pinged, _ := p.Flows(); len(pinged) != 2 {
		t.Fatalf("pinged %+v", pinged)
	}
	// The first binding refreshed through another node: CSeq 2, not
	// pinged here.
	b.CSeq = 2
	p.Sync("alice", []location.Binding{b, other}, nil, t0.Add(time.Second))
	if pinged, _ := p.Flows(); len(pinged) != 1 || pinged[0].Contact != other.Contact {
		t.Errorf("after a refresh elsewhere, pinged %+v", pinged)
	}
	// Unregistered.
	p.Sync("alice", nil, nil, t0.Add(time.Second))
	if pinged, _ := p.Flows(); len(pinged) != 0 {
		t.Errorf("after the AOR left, pinged %+v", pinged)
	}
	if next := p.Tick(t0.Add(time.Minute)); !next.IsZero() || len(r.pings) != 0 {
		t.Errorf("next %v, pings %v", next, r.pings)
	}

	// A silent flow whose binding was written since by another REGISTER
	// is dropped, and the binding stays.
	p2, r2 := newPinger(store)
	p2.Sync("alice", []location.Binding{other}, []Flow{{Contact: other.Contact, CallID: "reg-2", CSeq: 1, Expires: t0.Add(time.Hour), Interval: time.Second, Timeout: 2 * time.Second}}, t0)
	if _, err := store.Update("alice", t0, func(cur []location.Binding) ([]location.Binding, error) {
		for i := range cur {
			cur[i].CSeq = 7
		}
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 3; s++ {
		p2.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	if bs, _, _ := store.Lookup("alice", t0.Add(3*time.Second)); len(bs) != 2 || r2.events["removed"] != 0 {
		t.Errorf("a binding refreshed elsewhere was removed: %v, %v", bs, r2.events)
	}
	if pinged, _ := p2.Flows(); len(pinged) != 0 {
		t.Errorf("pinged %+v", pinged)
	}

	// A binding that lapses is pinged no more.
	p3, r3 := newPinger(store)
	p3.Sync("alice", nil, []Flow{{Contact: "sip:x@10.0.0.7", Expires: t0.Add(3 * time.Second), Interval: 2 * time.Second, Timeout: time.Hour}}, t0)
	p3.Tick(t0.Add(2 * time.Second))
	p3.Tick(t0.Add(4 * time.Second))
	if len(r3.pings) != 1 {
		t.Errorf("pings past the expiry: %d", len(r3.pings))
	}
}
