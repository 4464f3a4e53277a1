package location

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is the conformance suite that every Store runs: the semantics
// of Memory (memory.go), which the other stores must match.

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// binding returns a binding of contact that lapses ttl after t0.
func binding(contact string, ttl time.Duration) Binding {
	return Binding{Contact: contact, Expires: t0.Add(ttl), Updated: t0}
}

// set returns an Update function that replaces every binding with bs.
func set(bs ...Binding) func([]Binding) ([]Binding, error) {
	return func([]Binding) ([]Binding, error) { return bs, nil }
}

// contacts returns the Contact of each binding.
func contacts(bs []Binding) []string {
	out := []string{}
	for _, b := range bs {
		out = append(out, b.Contact)
	}
	return out
}

// clockSetter is a Store whose Count clock a test can set.
type clockSetter interface {
	setClock(func() time.Time)
}

func (m *Memory) setClock(c func() time.Time) { m.clock = c }
func (s *Bolt) setClock(c func() time.Time)   { s.clock = c }
func (r *Redis) setClock(c func() time.Time)  { r.clock = c }

// runStoreTests runs the conformance suite on stores made by newStore,
// which returns a new, empty Store for each case (and closes it in
// t.Cleanup if it needs closing).
func runStoreTests(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("Lookup", func(t *testing.T) { testStoreLookup(t, newStore) })
	t.Run("Update", func(t *testing.T) { testStoreUpdate(t, newStore) })
	t.Run("Fields", func(t *testing.T) { testStoreFields(t, newStore) })
	t.Run("Copies", func(t *testing.T) { testStoreCopies(t, newStore) })
	t.Run("Sweep", func(t *testing.T) { testStoreSweep(t, newStore) })
	t.Run("Count", func(t *testing.T) { testStoreCount(t, newStore) })
	t.Run("AORs", func(t *testing.T) { testStoreAORs(t, newStore) })
	t.Run("Each", func(t *testing.T) { testStoreEach(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) { testStoreConcurrent(t, newStore) })
	t.Run("Forwarding", func(t *testing.T) { testStoreForwarding(t, newStore) })
}

func testStoreLookup(t *testing.T, newStore func(t *testing.T) Store) {
	type write struct {
		aor string
		at  time.Duration
		fn  func([]Binding) ([]Binding, error)
	}
	tests := []struct {
		name      string
		writes    []write
		sweepAt   time.Duration // 0: no sweep
		aor       string
		at        time.Duration
		contacts  []string
		wantKnown bool
	}{
		{
			name: "unknown AOR",
			aor:  "alice", at: 0,
			contacts: []string{}, wantKnown: false,
		},
		{
			name: "live bindings in stored order",
			writes: []write{{"alice", 0, set(
				binding("sip:a@3", time.Hour), binding("sip:a@1", 2*time.Hour), binding("sip:a@2", 3*time.Hour),
			)}},
			aor: "alice", at: time.Minute,
			contacts: []string{"sip:a@3", "sip:a@1", "sip:a@2"}, wantKnown: true,
		},
		{
			name:   "other AOR is not seen",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			aor:    "bob", at: time.Minute,
			contacts: []string{}, wantKnown: false,
		},
		{
			name:   "an AOR that starts like another is another",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}, {"alice:x", 0, set(binding("sip:x@1", time.Hour))}},
			aor:    "alice", at: time.Minute,
			contacts: []string{"sip:a@1"}, wantKnown: true,
		},
		{
			name:   "an expired binding is never returned",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour))}},
			aor:    "alice", at: 90 * time.Minute,
			contacts: []string{"sip:a@2"}, wantKnown: true,
		},
		{
			name:   "the instant of expiry is expired",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			aor:    "alice", at: time.Hour,
			contacts: []string{}, wantKnown: true,
		},
		{
			name:   "all expired, unswept: known for 24h after the last expiry",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			aor:    "alice", at: 24*time.Hour + 59*time.Minute,
			contacts: []string{}, wantKnown: true,
		},
		{
			name:   "all expired, unswept: unknown 24h after the last expiry",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			aor:    "alice", at: 25 * time.Hour,
			contacts: []string{}, wantKnown: false,
		},
		{
			name: "a shorter refresh moves the last expiry earlier",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", 48*time.Hour))},
				{"alice", 10 * time.Hour, set(binding("sip:a@1", 11*time.Hour))},
			},
			aor: "alice", at: 35 * time.Hour,
			contacts: []string{}, wantKnown: false,
		},
		{
			name:    "all expired and swept: tombstone keeps it known",
			writes:  []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			sweepAt: 2 * time.Hour,
			aor:     "alice", at: 3 * time.Hour,
			contacts: []string{}, wantKnown: true,
		},
		{
			name:    "tombstone dropped by a sweep 24h after expiry",
			writes:  []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			sweepAt: 25 * time.Hour,
			aor:     "alice", at: 25 * time.Hour,
			contacts: []string{}, wantKnown: false,
		},
		{
			name: "all removed: known from the removal on",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", 48*time.Hour))},
				{"alice", 10 * time.Hour, set()},
			},
			aor: "alice", at: 33 * time.Hour,
			contacts: []string{}, wantKnown: true,
		},
		{
			name: "all removed: unknown 24h after the removal",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", 48*time.Hour))},
				{"alice", 10 * time.Hour, set()},
			},
			aor: "alice", at: 34 * time.Hour,
			contacts: []string{}, wantKnown: false,
		},
		{
			name: "all removed, swept within 24h: still known",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", 48*time.Hour))},
				{"alice", time.Hour, set()},
			},
			sweepAt: 2 * time.Hour,
			aor:     "alice", at: 3 * time.Hour,
			contacts: []string{}, wantKnown: true,
		},
		{
			name: "removing what lapsed keeps the time it lapsed",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", time.Hour))},
				{"alice", 2 * time.Hour, set()},
			},
			aor: "alice", at: 25*time.Hour + time.Minute,
			contacts: []string{}, wantKnown: false,
		},
		{
			name:   "removing nothing from an unknown AOR leaves no tombstone",
			writes: []write{{"alice", 0, set()}},
			aor:    "alice", at: time.Minute,
			contacts: []string{}, wantKnown: false,
		},
		{
			name:   "bindings written already expired are not stored",
			writes: []write{{"alice", 0, set(binding("sip:a@1", 0), binding("sip:a@2", time.Hour))}},
			aor:    "alice", at: 0,
			contacts: []string{"sip:a@2"}, wantKnown: true,
		},
		{
			name: "registering again after a removal",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", time.Hour))},
				{"alice", time.Minute, set()},
				{"alice", 2 * time.Minute, set(binding("sip:a@3", time.Hour))},
			},
			aor: "alice", at: 3 * time.Minute,
			contacts: []string{"sip:a@3"}, wantKnown: true,
		},
		{
			name: "a second write replaces and reorders",
			writes: []write{
				{"alice", 0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", time.Hour))},
				{"alice", time.Minute, set(binding("sip:a@2", time.Hour), binding("sip:a@4", time.Hour))},
			},
			aor: "alice", at: 2 * time.Minute,
			contacts: []string{"sip:a@2", "sip:a@4"}, wantKnown: true,
		},
		{
			name: "two bindings with one contact are both kept",
			writes: []write{{"alice", 0, set(
				binding("sip:a@1", time.Hour), binding("sip:a@1", 2*time.Hour),
			)}},
			aor: "alice", at: time.Minute,
			contacts: []string{"sip:a@1", "sip:a@1"}, wantKnown: true,
		},
	}
	for i, tc := range tests {
		s := newStore(t)
		for _, w := range tc.writes {
			if _, err := s.Update(w.aor, t0.Add(w.at), w.fn); err != nil {
				t.Fatalf("test %d (%s): update: %v", i, tc.name, err)
			}
		}
		if tc.sweepAt != 0 {
			s.Sweep(t0.Add(tc.sweepAt))
		}
		got, known, err := s.Lookup(tc.aor, t0.Add(tc.at))
		if err != nil {
			t.Fatalf("test %d (%s): lookup: %v", i, tc.name, err)
		}
		if !slices.Equal(contacts(got), tc.contacts) {
			t.Errorf("test %d (%s): contacts = %q, want %q", i, tc.name, contacts(got), tc.contacts)
		}
		if known != tc.wantKnown {
			t.Errorf("test %d (%s): known = %v, want %v", i, tc.name, known, tc.wantKnown)
		}
	}
}

func testStoreUpdate(t *testing.T, newStore func(t *testing.T) Store) {
	errNo := errors.New("no")
	tests := []struct {
		name string
		// first is stored at t0, then fn runs at t0+at.
		first    []Binding
		at       time.Duration
		fn       func(current []Binding) ([]Binding, error)
		wantSeen []string // what fn was given; nil: not checked
		wantErr  error
		want     []string // what Update returned and Lookup finds after
	}{
		{
			name:     "fn sees the live bindings only",
			first:    []Binding{binding("sip:a@1", time.Minute), binding("sip:a@2", time.Hour)},
			at:       2 * time.Minute,
			fn:       func(cur []Binding) ([]Binding, error) { return cur, nil },
			wantSeen: []string{"sip:a@2"},
			want:     []string{"sip:a@2"},
		},
		{
			name:  "fn adds to what is there",
			first: []Binding{binding("sip:a@1", time.Hour)},
			fn: func(cur []Binding) ([]Binding, error) {
				return append(cur, binding("sip:a@2", time.Hour)), nil
			},
			wantSeen: []string{"sip:a@1"},
			want:     []string{"sip:a@1", "sip:a@2"},
		},
		{
			name:  "fn removes one",
			first: []Binding{binding("sip:a@1", time.Hour), binding("sip:a@2", time.Hour), binding("sip:a@3", time.Hour)},
			fn: func(cur []Binding) ([]Binding, error) {
				return slices.DeleteFunc(cur, func(b Binding) bool { return b.Contact == "sip:a@2" }), nil
			},
			wantSeen: []string{"sip:a@1", "sip:a@2", "sip:a@3"},
			want:     []string{"sip:a@1", "sip:a@3"},
		},
		{
			name:  "fn refreshes a binding in place",
			first: []Binding{binding("sip:a@1", time.Hour), binding("sip:a@2", time.Hour)},
			at:    30 * time.Minute,
			fn: func(cur []Binding) ([]Binding, error) {
				cur[0].Expires = t0.Add(3 * time.Hour)
				return cur, nil
			},
			wantSeen: []string{"sip:a@1", "sip:a@2"},
			want:     []string{"sip:a@1", "sip:a@2"},
		},
		{
			name: "an instance keeps its binding when its contact changes",
			first: []Binding{
				{Contact: "sip:a@1", Instance: "<urn:uuid:1>", Expires: t0.Add(time.Hour)},
				{Contact: "sip:a@2", Expires: t0.Add(time.Hour)},
			},
			fn: func(cur []Binding) ([]Binding, error) {
				cur[0].Contact = "sip:a@9"
				return cur, nil
			},
			wantSeen: []string{"sip:a@1", "sip:a@2"},
			want:     []string{"sip:a@9", "sip:a@2"},
		},
		{
			name:     "a failing fn changes nothing",
			first:    []Binding{binding("sip:a@1", time.Hour)},
			fn:       func([]Binding) ([]Binding, error) { return nil, errNo },
			wantSeen: []string{"sip:a@1"},
			wantErr:  errNo,
			want:     []string{"sip:a@1"},
		},
		{
			name:     "fn on an unknown AOR sees nothing",
			fn:       set(binding("sip:a@1", time.Hour)),
			wantSeen: []string{},
			want:     []string{"sip:a@1"},
		},
		{
			name:     "fn returning nothing removes all",
			first:    []Binding{binding("sip:a@1", time.Hour), binding("sip:a@2", time.Hour)},
			fn:       set(),
			wantSeen: []string{"sip:a@1", "sip:a@2"},
			want:     []string{},
		},
	}
	for i, tc := range tests {
		s := newStore(t)
		if tc.first != nil {
			if _, err := s.Update("alice", t0, set(tc.first...)); err != nil {
				t.Fatalf("test %d (%s): %v", i, tc.name, err)
			}
		}
		var seen []string
		fn := func(cur []Binding) ([]Binding, error) {
			seen = contacts(cur)
			return tc.fn(cur)
		}
		now := t0.Add(tc.at)
		got, err := s.Update("alice", now, fn)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("test %d (%s): err = %v, want %v", i, tc.name, err, tc.wantErr)
		}
		if tc.wantSeen != nil && !slices.Equal(seen, tc.wantSeen) {
			t.Errorf("test %d (%s): fn saw %q, want %q", i, tc.name, seen, tc.wantSeen)
		}
		if tc.wantErr == nil && !slices.Equal(contacts(got), tc.want) {
			t.Errorf("test %d (%s): Update returned %q, want %q", i, tc.name, contacts(got), tc.want)
		}
		after, _, err := s.Lookup("alice", now)
		if err != nil {
			t.Fatalf("test %d (%s): lookup: %v", i, tc.name, err)
		}
		if !slices.Equal(contacts(after), tc.want) {
			t.Errorf("test %d (%s): stored %q, want %q", i, tc.name, contacts(after), tc.want)
		}
		for _, b := range after {
			if b.AOR != "alice" {
				t.Errorf("test %d (%s): binding AOR = %q, want alice", i, tc.name, b.AOR)
			}
		}
	}
}

// testStoreFields checks that every field of a binding comes back as it
// was written.
func testStoreFields(t *testing.T, newStore func(t *testing.T) Store) {
	s := newStore(t)
	want := Binding{
		AOR:       "alice",
		Contact:   "sip:alice@192.0.2.10:5062;transport=tcp",
		Params:    `+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1;q=0.5`,
		Instance:  "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>",
		CallID:    "a84b4c76e66710@pc33.example.org",
		CSeq:      4711,
		Expires:   t0.Add(time.Hour + 123456789*time.Nanosecond),
		Received:  "198.51.100.7:40312",
		Transport: "TCP",
		NAT:       true,
		Node:      "3f2a9c1e5b7d4a60",
		Local:     "192.0.2.1:5060",
		UserAgent: "Linphone/5.2.5 (belle-sip/5.2.4)",
		Path:      []string{"<sip:edge1.example.org;lr>", "<sip:edge2.example.org;lr>"},
		Updated:   t0.Add(987654321 * time.Nanosecond),
	}
	in := want
	in.AOR = "someone else" // the store sets it
	if _, err := s.Update("alice", t0, set(in)); err != nil {
		t.Fatal(err)
	}
	got, known, err := s.Lookup("alice", t0.Add(time.Second))
	if err != nil || !known || len(got) != 1 {
		t.Fatalf("Lookup = %+v, %v, %v; want one binding", got, known, err)
	}
	if !sameBinding(got[0], want) {
		t.Errorf("stored binding\n %+v\nwant\n %+v", got[0], want)
	}
}

// sameBinding compares bindings field by field, times as instants.
func sameBinding(a, b Binding) bool {
	return a.AOR == b.AOR && a.Contact == b.Contact && a.Params == b.Params && a.Instance == b.Instance &&
		a.CallID == b.CallID && a.CSeq == b.CSeq && a.Expires.Equal(b.Expires) &&
		a.Received == b.Received && a.Transport == b.Transport && a.NAT == b.NAT && a.Node == b.Node && a.Local == b.Local &&
		a.UserAgent == b.UserAgent && slices.Equal(a.Path, b.Path) &&
		a.Updated.Equal(b.Updated)
}

// testStoreCopies checks that callers and the store share no memory.
func testStoreCopies(t *testing.T, newStore func(t *testing.T) Store) {
	s := newStore(t)
	b := binding("sip:a@1", time.Hour)
	b.Path = []string{"<sip:edge1;lr>"}
	in := []Binding{b}
	got, err := s.Update("alice", t0, set(in...))
	if err != nil {
		t.Fatal(err)
	}
	in[0].Path[0] = "changed by the writer"
	got[0].Path[0] = "changed by the reader"
	got[0].Contact = "changed"
	found, _, _ := s.Lookup("alice", t0)
	found[0].Path[0] = "changed by a looker"
	s.Update("alice", t0, func(cur []Binding) ([]Binding, error) {
		cur[0].Path[0] = "changed by a failing fn"
		return nil, errors.New("fail")
	})
	again, _, _ := s.Lookup("alice", t0)
	if len(again) != 1 || again[0].Contact != "sip:a@1" || again[0].Path[0] != "<sip:edge1;lr>" {
		t.Errorf("stored binding changed through a caller's copy: %+v", again)
	}
}

func testStoreSweep(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name        string
		sweeps      []time.Duration
		wantRemoved []int
		wantKnown   []string // AORs known at the last sweep's time
	}{
		{
			name:        "nothing expired",
			sweeps:      []time.Duration{30 * time.Minute},
			wantRemoved: []int{0},
			wantKnown:   []string{"alice", "bob", "carol"},
		},
		{
			name:        "expired bindings removed, counted once",
			sweeps:      []time.Duration{90 * time.Minute, 100 * time.Minute},
			wantRemoved: []int{2, 0},
			wantKnown:   []string{"alice", "bob", "carol"},
		},
		{
			name:        "all expired but carol's refreshed binding",
			sweeps:      []time.Duration{3 * time.Hour, 4 * time.Hour},
			wantRemoved: []int{3, 0},
			wantKnown:   []string{"alice", "bob", "carol"},
		},
		{
			name:        "tombstones dropped 24h after the last expiry",
			sweeps:      []time.Duration{3 * time.Hour, 25 * time.Hour, 26 * time.Hour},
			wantRemoved: []int{3, 1, 0},
			wantKnown:   []string{"carol"},
		},
		{
			name:        "a single late sweep drops bindings and tombstones",
			sweeps:      []time.Duration{50 * time.Hour},
			wantRemoved: []int{4},
			wantKnown:   []string{},
		},
	}
	for i, tc := range tests {
		s := newStore(t)
		mustUpdate(t, s, "alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
		mustUpdate(t, s, "bob", t0, set(binding("sip:b@1", time.Hour)))
		mustUpdate(t, s, "carol", t0, set(binding("sip:c@1", 2*time.Hour)))
		// Carol's first binding lapses at 2h; then she registers again
		// until 25h.
		mustUpdate(t, s, "carol", t0.Add(2*time.Hour), set(binding("sip:c@1", 25*time.Hour)))
		for j, at := range tc.sweeps {
			if n := s.Sweep(t0.Add(at)); n != tc.wantRemoved[j] {
				t.Errorf("test %d (%s): sweep %d at %v removed %d, want %d", i, tc.name, j, at, n, tc.wantRemoved[j])
			}
		}
		last := t0.Add(tc.sweeps[len(tc.sweeps)-1])
		known := []string{}
		for _, aor := range []string{"alice", "bob", "carol"} {
			_, ok, err := s.Lookup(aor, last)
			if err != nil {
				t.Fatalf("test %d (%s): lookup: %v", i, tc.name, err)
			}
			if ok {
				known = append(known, aor)
			}
		}
		if !slices.Equal(known, tc.wantKnown) {
			t.Errorf("test %d (%s): known AORs %q, want %q", i, tc.name, known, tc.wantKnown)
		}
	}
}

func testStoreCount(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		at                     time.Duration
		wantAORs, wantBindings int
	}{
		{0, 2, 3},
		{90 * time.Minute, 1, 1},
		{3 * time.Hour, 0, 0},
	}
	for i, tc := range tests {
		s := newStore(t)
		cs, ok := s.(clockSetter)
		if !ok {
			t.Fatalf("%T has no setClock", s)
		}
		cs.setClock(func() time.Time { return t0.Add(tc.at) })
		mustUpdate(t, s, "alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
		mustUpdate(t, s, "bob", t0, set(binding("sip:b@1", time.Hour)))
		mustUpdate(t, s, "carol", t0, set())
		aors, bindings := s.Count()
		if aors != tc.wantAORs || bindings != tc.wantBindings {
			t.Errorf("test %d: Count() = %d, %d; want %d, %d", i, aors, bindings, tc.wantAORs, tc.wantBindings)
		}
	}
}

// testStoreAORs runs writes and sweeps on one store and checks AORs after
// each. Between an expiry and the Sweep that removes it, the count may
// still include the AOR (Memory and Bolt do; Redis does not): want is the
// exact count, upTo the highest one accepted, if higher.
func testStoreAORs(t *testing.T, newStore func(t *testing.T) Store) {
	add := func(bs ...Binding) func([]Binding) ([]Binding, error) {
		return func(cur []Binding) ([]Binding, error) { return append(cur, bs...), nil }
	}
	drop := func(contact string) func([]Binding) ([]Binding, error) {
		return func(cur []Binding) ([]Binding, error) {
			return slices.DeleteFunc(cur, func(b Binding) bool { return b.Contact == contact }), nil
		}
	}
	fail := func([]Binding) ([]Binding, error) { return nil, errors.New("no") }
	steps := []struct {
		name  string
		at    time.Duration
		aor   string // with fn: an Update
		fn    func([]Binding) ([]Binding, error)
		sweep bool
		want  int
		upTo  int
	}{
		{name: "a new AOR", aor: "alice", fn: add(binding("sip:a@1", time.Hour)), want: 1},
		{name: "a second binding of it", aor: "alice", fn: add(binding("sip:a@2", 3*time.Hour)), want: 1},
		{name: "a refresh", at: time.Minute, aor: "alice", fn: set(binding("sip:a@1", time.Hour), binding("sip:a@2", 3*time.Hour)), want: 1},
		{name: "another AOR", aor: "bob", fn: add(binding("sip:b@1", 2*time.Hour)), want: 2},
		{name: "a failing update of a new AOR", aor: "carol", fn: fail, want: 2},
		{name: "a new AOR whose bindings are already expired", aor: "carol", fn: add(binding("sip:c@1", 0)), want: 2},
		{name: "removing from an unknown AOR", aor: "dave", fn: set(), want: 2},
		{name: "one binding of two removed", at: 2 * time.Minute, aor: "alice", fn: drop("sip:a@1"), want: 2},
		{name: "the last binding removed", at: 3 * time.Minute, aor: "bob", fn: drop("sip:b@1"), want: 1},
		{name: "removing again", at: 4 * time.Minute, aor: "bob", fn: set(), want: 1},
		{name: "registering again after a removal", at: 5 * time.Minute, aor: "bob", fn: add(binding("sip:b@2", time.Hour)), want: 2},
		{name: "bob's binding lapsed, unswept", at: 90 * time.Minute, want: 1, upTo: 2},
		{name: "a sweep removes it", at: 90 * time.Minute, sweep: true, want: 1},
		{name: "a sweep that removes nothing", at: 2 * time.Hour, sweep: true, want: 1},
		{name: "registering again after expiry", at: 2 * time.Hour, aor: "bob", fn: add(binding("sip:b@3", 4*time.Hour)), want: 2},
		{name: "an update of lapsed alice that writes nothing", at: 3 * time.Hour, aor: "alice", fn: set(), want: 1},
		{name: "a late sweep", at: 30 * time.Hour, sweep: true, want: 0},
	}
	s := newStore(t)
	for i, st := range steps {
		now := t0.Add(st.at)
		if st.fn != nil {
			s.Update(st.aor, now, st.fn)
		}
		if st.sweep {
			s.Sweep(now)
		}
		got, err := s.AORs(now)
		if err != nil {
			t.Fatalf("step %d (%s): AORs: %v", i, st.name, err)
		}
		if hi := max(st.want, st.upTo); got < st.want || got > hi {
			want := fmt.Sprint(st.want)
			if hi > st.want {
				want = fmt.Sprintf("%d to %d", st.want, hi)
			}
			t.Errorf("step %d (%s): AORs = %d, want %s", i, st.name, got, want)
		}
	}
}

func testStoreEach(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		at   time.Duration
		want map[string]int // AOR -> live bindings
	}{
		{0, map[string]int{"alice": 2, "bob": 1}},
		{90 * time.Minute, map[string]int{"alice": 1}},
		{3 * time.Hour, map[string]int{}},
	}
	for i, tc := range tests {
		s := newStore(t)
		mustUpdate(t, s, "alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
		mustUpdate(t, s, "bob", t0, set(binding("sip:b@1", time.Hour)))
		mustUpdate(t, s, "carol", t0, set())
		got := map[string]int{}
		if err := s.Each(t0.Add(tc.at), func(aor string, bs []Binding) bool {
			got[aor] += len(bs)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("test %d: Each saw %v, want %v", i, got, tc.want)
		}
		for aor, n := range tc.want {
			if got[aor] != n {
				t.Errorf("test %d: Each saw %v, want %v", i, got, tc.want)
			}
		}
		calls := 0
		_ = s.Each(t0, func(string, []Binding) bool { calls++; return false })
		if tc.at == 0 && calls != 1 {
			t.Errorf("test %d: Each went on after false: %d calls", i, calls)
		}
	}
}

// testStoreConcurrent runs writers, readers and sweepers at once (run it
// with -race). Each writer increments a counter kept in a binding of a
// shared AOR: if Update were not atomic per AOR, increments would be lost.
func testStoreConcurrent(t *testing.T, newStore func(t *testing.T) Store) {
	const (
		writers   = 8
		perWriter = 40
	)
	s := newStore(t)
	now := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			own := fmt.Sprintf("user%d", w)
			for i := range perWriter {
				if _, err := s.Update("shared", now, increment(now)); err != nil {
					t.Error(err)
					return
				}
				_, err := s.Update(own, now, func(cur []Binding) ([]Binding, error) {
					if i%10 == 9 {
						return nil, nil
					}
					return append(cur, Binding{Contact: fmt.Sprintf("sip:%s@%d", own, i), Expires: now.Add(time.Duration(i%3) * time.Second)}), nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				s.Lookup(own, now)
				s.Lookup("shared", now)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range perWriter {
				s.Sweep(now.Add(time.Second))
				s.Count()
			}
		})
	}
	wg.Wait()
	got, known, err := s.Lookup("shared", now)
	if err != nil || !known || len(got) != 1 || got[0].CSeq != writers*perWriter {
		t.Errorf("shared counter = %+v (known %v, err %v), want CSeq %d", got, known, err, writers*perWriter)
	}
	// Every user's bindings lapsed 2s on at the latest; the shared one lives.
	later := now.Add(30 * time.Minute)
	s.Sweep(later)
	if n, err := s.AORs(later); n != 1 || err != nil {
		t.Errorf("AORs after the concurrent writes and a sweep = %d, %v; want 1", n, err)
	}
}

// increment returns an Update function that adds one to the CSeq of a
// counter binding, creating it at 1.
func increment(now time.Time) func([]Binding) ([]Binding, error) {
	return func(cur []Binding) ([]Binding, error) {
		if len(cur) == 0 {
			return []Binding{{Contact: "sip:counter@1", CSeq: 1, Expires: now.Add(time.Hour)}}, nil
		}
		cur[0].CSeq++
		return cur, nil
	}
}

// mustUpdate runs an Update that must succeed.
func mustUpdate(t *testing.T, s Store, aor string, now time.Time, fn func([]Binding) ([]Binding, error)) []Binding {
	t.Helper()
	got, err := s.Update(aor, now, fn)
	if err != nil {
		t.Fatalf("update of %s: %v", aor, err)
	}
	return got
}

// holderWalk makes random writes to s, a Holder, sweeping every few, and
// fails unless Held equals Count after each sweep; check, if not nil,
// runs then too.
func holderWalk(t *testing.T, s Store, check func()) {
	t.Helper()
	h := s.(Holder)
	rng := rand.New(rand.NewPCG(7, 8))
	now := t0
	s.(clockSetter).setClock(func() time.Time { return now })
	for step := range 2000 {
		now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		aor := fmt.Sprint("u", rng.IntN(50))
		var bs []Binding
		for i := range rng.IntN(4) { // 0 to 3 bindings; none removes them all
			bs = append(bs, Binding{Contact: fmt.Sprint("sip:", aor, "@", i), Expires: now.Add(time.Duration(1+rng.IntN(600)) * time.Second)})
		}
		mustUpdate(t, s, aor, now, set(bs...))
		if step%7 == 0 {
			now = now.Add(boltSweepEvery) // past any store's spacing of sweeps
			s.Sweep(now)
			aors, bindings := s.Count()
			if ha, hb := h.Held(); ha != aors || hb != bindings {
				t.Fatalf("step %d: Held() = %d, %d; Count() = %d, %d", step, ha, hb, aors, bindings)
			}
			if check != nil {
				check()
			}
		}
	}
}

func testStoreForwarding(t *testing.T, newStore func(t *testing.T) Store) {
	s := newStore(t)
	fs, ok := s.(Forwards)
	if !ok {
		t.Fatalf("%T does not keep forwarding", s)
	}
	if f, err := fs.Forwarding("alice"); err != nil || !f.IsZero() {
		t.Fatalf("Forwarding(alice) of an empty store = %+v, %v", f, err)
	}
	alice := Forwarding{Busy: "bob", NoAnswer: "set:voicemail", NoAnswerAfter: 20}
	carol := Forwarding{Unconditional: "sip:carol@192.0.2.1"}
	for aor, f := range map[string]Forwarding{"alice": alice, "carol@example.org": carol} {
		if err := fs.SetForwarding(aor, f); err != nil {
			t.Fatalf("SetForwarding(%s): %v", aor, err)
		}
	}
	if f, err := fs.Forwarding("alice"); err != nil || f != alice {
		t.Errorf("Forwarding(alice) = %+v, %v; want %+v", f, err, alice)
	}
	var seen []string
	if err := fs.EachForwarding(func(aor string, f Forwarding) bool {
		seen = append(seen, aor+"="+f.Kinds()[0][1])
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(seen, ","), "alice=bob,carol@example.org=sip:carol@192.0.2.1"; got != want {
		t.Errorf("EachForwarding = %s; want %s", got, want)
	}
	if err := fs.SetForwarding("alice", Forwarding{}); err != nil {
		t.Fatal(err)
	}
	if f, err := fs.Forwarding("alice"); err != nil || !f.IsZero() {
		t.Errorf("Forwarding(alice) after removal = %+v, %v", f, err)
	}
	if aors, _ := s.Count(); aors != 0 {
		t.Errorf("Count() = %d AORs; forwarding is not a binding", aors)
	}
}
