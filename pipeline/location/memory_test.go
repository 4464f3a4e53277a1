package location

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// binding returns a binding of contact that lapses ttl after t0.
func binding(contact string, ttl time.Duration) Binding {
	return Binding{Contact: contact, Expires: t0.Add(ttl), Updated: t0}
}

// set returns an Update function that replaces every binding with bs.
func set(bs ...Binding) func([]Binding) ([]Binding, error) {
	return func([]Binding) ([]Binding, error) { return bs, nil }
}

func contacts(bs []Binding) []string {
	out := []string{}
	for _, b := range bs {
		out = append(out, b.Contact)
	}
	return out
}

func TestMemoryLookup(t *testing.T) {
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
			name:   "live bindings in stored order",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour))}},
			aor:    "alice", at: time.Minute,
			contacts: []string{"sip:a@1", "sip:a@2"}, wantKnown: true,
		},
		{
			name:   "other AOR is not seen",
			writes: []write{{"alice", 0, set(binding("sip:a@1", time.Hour))}},
			aor:    "bob", at: time.Minute,
			contacts: []string{}, wantKnown: false,
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
	}
	for i, tc := range tests {
		m := NewMemory()
		for _, w := range tc.writes {
			if _, err := m.Update(w.aor, t0.Add(w.at), w.fn); err != nil {
				t.Fatalf("test %d (%s): update: %v", i, tc.name, err)
			}
		}
		if tc.sweepAt != 0 {
			m.Sweep(t0.Add(tc.sweepAt))
		}
		got, known, err := m.Lookup(tc.aor, t0.Add(tc.at))
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

func TestMemoryUpdate(t *testing.T) {
	errNo := errors.New("no")
	tests := []struct {
		name string
		// first is stored at t0, then fn runs at t0+at.
		first    []Binding
		at       time.Duration
		fn       func(current []Binding) ([]Binding, error)
		wantSeen []string // what fn was given
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
			name:     "a failing fn changes nothing",
			first:    []Binding{binding("sip:a@1", time.Hour)},
			fn:       func([]Binding) ([]Binding, error) { return nil, errNo },
			wantSeen: nil,
			wantErr:  errNo,
			want:     []string{"sip:a@1"},
		},
		{
			name:     "fn on an unknown AOR sees nothing",
			fn:       set(binding("sip:a@1", time.Hour)),
			wantSeen: nil,
			want:     []string{"sip:a@1"},
		},
	}
	for i, tc := range tests {
		m := NewMemory()
		if tc.first != nil {
			if _, err := m.Update("alice", t0, set(tc.first...)); err != nil {
				t.Fatalf("test %d (%s): %v", i, tc.name, err)
			}
		}
		var seen []string
		fn := func(cur []Binding) ([]Binding, error) {
			seen = contacts(cur)
			return tc.fn(cur)
		}
		now := t0.Add(tc.at)
		got, err := m.Update("alice", now, fn)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("test %d (%s): err = %v, want %v", i, tc.name, err, tc.wantErr)
		}
		if tc.wantSeen != nil && !slices.Equal(seen, tc.wantSeen) {
			t.Errorf("test %d (%s): fn saw %q, want %q", i, tc.name, seen, tc.wantSeen)
		}
		if tc.wantErr == nil && !slices.Equal(contacts(got), tc.want) {
			t.Errorf("test %d (%s): Update returned %q, want %q", i, tc.name, contacts(got), tc.want)
		}
		after, _, _ := m.Lookup("alice", now)
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

// TestMemoryCopies checks that callers and the store share no memory.
func TestMemoryCopies(t *testing.T) {
	m := NewMemory()
	b := binding("sip:a@1", time.Hour)
	b.Path = []string{"<sip:edge1;lr>"}
	in := []Binding{b}
	got, err := m.Update("alice", t0, set(in...))
	if err != nil {
		t.Fatal(err)
	}
	in[0].Path[0] = "changed by the writer"
	got[0].Path[0] = "changed by the reader"
	got[0].Contact = "changed"
	found, _, _ := m.Lookup("alice", t0)
	found[0].Path[0] = "changed by a looker"
	m.Update("alice", t0, func(cur []Binding) ([]Binding, error) {
		cur[0].Path[0] = "changed by a failing fn"
		return nil, errors.New("fail")
	})
	again, _, _ := m.Lookup("alice", t0)
	if len(again) != 1 || again[0].Contact != "sip:a@1" || again[0].Path[0] != "<sip:edge1;lr>" {
		t.Errorf("stored binding changed through a caller's copy: %+v", again)
	}
}

func TestMemorySweep(t *testing.T) {
	tests := []struct {
		name        string
		sweeps      []time.Duration
		wantRemoved []int
		wantAORs    []string // AORs still kept (live or tombstoned) after the sweeps
	}{
		{
			name:        "nothing expired",
			sweeps:      []time.Duration{30 * time.Minute},
			wantRemoved: []int{0},
			wantAORs:    []string{"alice", "bob", "carol"},
		},
		{
			name:        "expired bindings removed, counted once",
			sweeps:      []time.Duration{90 * time.Minute, 100 * time.Minute},
			wantRemoved: []int{2, 0},
			wantAORs:    []string{"alice", "bob", "carol"},
		},
		{
			name:        "all expired but carol's refreshed binding",
			sweeps:      []time.Duration{3 * time.Hour, 4 * time.Hour},
			wantRemoved: []int{3, 0},
			wantAORs:    []string{"alice", "bob", "carol"},
		},
		{
			name:        "tombstones dropped 24h after the last expiry",
			sweeps:      []time.Duration{3 * time.Hour, 25 * time.Hour, 26 * time.Hour},
			wantRemoved: []int{3, 1, 0},
			wantAORs:    []string{"carol"},
		},
		{
			name:        "a single late sweep drops bindings and tombstones",
			sweeps:      []time.Duration{50 * time.Hour},
			wantRemoved: []int{4},
			wantAORs:    []string{},
		},
	}
	for i, tc := range tests {
		m := NewMemory()
		m.Update("alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
		m.Update("bob", t0, set(binding("sip:b@1", time.Hour)))
		m.Update("carol", t0, set(binding("sip:c@1", 2*time.Hour)))
		// Carol's first binding lapses at 2h; then she registers again
		// until 25h.
		m.Update("carol", t0.Add(2*time.Hour), set(binding("sip:c@1", 25*time.Hour)))
		for j, at := range tc.sweeps {
			if n := m.Sweep(t0.Add(at)); n != tc.wantRemoved[j] {
				t.Errorf("test %d (%s): sweep %d at %v removed %d, want %d", i, tc.name, j, at, n, tc.wantRemoved[j])
			}
		}
		var kept []string
		for _, aor := range []string{"alice", "bob", "carol"} {
			s := m.shard(aor)
			if _, ok := s.aors[aor]; ok {
				kept = append(kept, aor)
			}
		}
		if !slices.Equal(kept, tc.wantAORs) {
			t.Errorf("test %d (%s): kept AORs %q, want %q", i, tc.name, kept, tc.wantAORs)
		}
	}
}

func TestMemoryCount(t *testing.T) {
	tests := []struct {
		at                     time.Duration
		wantAORs, wantBindings int
	}{
		{0, 2, 3},
		{90 * time.Minute, 1, 1},
		{3 * time.Hour, 0, 0},
	}
	for i, tc := range tests {
		m := NewMemory()
		m.clock = func() time.Time { return t0.Add(tc.at) }
		m.Update("alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
		m.Update("bob", t0, set(binding("sip:b@1", time.Hour)))
		aors, bindings := m.Count()
		if aors != tc.wantAORs || bindings != tc.wantBindings {
			t.Errorf("test %d: Count() = %d, %d; want %d, %d", i, aors, bindings, tc.wantAORs, tc.wantBindings)
		}
	}
}

// TestMemoryConcurrent runs writers, readers and sweepers at once (run it
// with -race). Each writer increments a counter kept in a binding of a
// shared AOR: if Update were not atomic per AOR, increments would be lost.
func TestMemoryConcurrent(t *testing.T) {
	const (
		writers   = 16
		perWriter = 200
	)
	m := NewMemory()
	now := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			own := fmt.Sprintf("user%d", w)
			for i := 0; i < perWriter; i++ {
				_, err := m.Update("shared", now, func(cur []Binding) ([]Binding, error) {
					if len(cur) == 0 {
						return []Binding{{Contact: "sip:counter@1", CSeq: 1, Expires: now.Add(time.Hour)}}, nil
					}
					cur[0].CSeq++
					return cur, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				m.Update(own, now, func(cur []Binding) ([]Binding, error) {
					if i%10 == 9 {
						return nil, nil
					}
					return append(cur, Binding{Contact: fmt.Sprintf("sip:%s@%d", own, i), Expires: now.Add(time.Duration(i%3) * time.Second)}), nil
				})
				m.Lookup(own, now)
				m.Lookup("shared", now)
			}
		}(w)
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				m.Sweep(now.Add(time.Second))
				m.Count()
			}
		}()
	}
	wg.Wait()
	got, known, _ := m.Lookup("shared", now)
	if !known || len(got) != 1 || got[0].CSeq != writers*perWriter {
		t.Errorf("shared counter = %+v (known %v), want CSeq %d", got, known, writers*perWriter)
	}
}
