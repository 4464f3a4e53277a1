package location

import (
	"fmt"
	"hash/maphash"
	"slices"
	"testing"
	"time"
)

func TestMemoryConformance(t *testing.T) {
	runStoreTests(t, func(t *testing.T) Store { return NewMemory() })
}

// TestMemorySweepForgets checks what the conformance suite cannot see:
// that Sweep frees the records it forgets, and no others.
func TestMemorySweepForgets(t *testing.T) {
	tests := []struct {
		sweeps []time.Duration
		want   []string // AORs still kept (live or tombstoned) after the sweeps
	}{
		{[]time.Duration{30 * time.Minute}, []string{"alice", "bob", "carol"}},
		{[]time.Duration{3 * time.Hour}, []string{"alice", "bob", "carol"}},
		{[]time.Duration{3 * time.Hour, 25 * time.Hour, 26 * time.Hour}, []string{"carol"}},
		{[]time.Duration{50 * time.Hour}, []string{}},
	}
	for i, tc := range tests {
		m := NewMemory()
		mustUpdate(t, m, "alice", t0, set(binding("sip:a@1", time.Hour), binding("sip:a@2", 2*time.Hour)))
		mustUpdate(t, m, "bob", t0, set(binding("sip:b@1", time.Hour)))
		mustUpdate(t, m, "carol", t0, set(binding("sip:c@1", 25*time.Hour)))
		for _, at := range tc.sweeps {
			m.Sweep(t0.Add(at))
		}
		kept := []string{}
		for _, aor := range []string{"alice", "bob", "carol"} {
			if s, h := m.shard(aor); s.find(h, aor) >= 0 {
				kept = append(kept, aor)
			}
		}
		if !slices.Equal(kept, tc.want) {
			t.Errorf("test %d: kept AORs %q, want %q", i, kept, tc.want)
		}
	}
}

// checkDue fails unless every record of m is filed under its due second,
// that second is in its shard's heap, the heap holds every filed second
// once, the index finds every record in its slot, and every slot is
// either a record's or free.
func checkDue(t *testing.T, m *Memory) {
	t.Helper()
	for k := range m.shards {
		s := &m.shards[k]
		if len(s.seconds) != len(s.due) {
			t.Errorf("shard %d: %d seconds in the heap, %d filed", k, len(s.seconds), len(s.due))
		}
		for _, sec := range s.seconds {
			if _, ok := s.due[sec]; !ok {
				t.Errorf("shard %d: second %d in the heap, nothing filed", k, sec)
			}
		}
		used := 0
		for i := range s.slots {
			r := &s.slots[i]
			if r.aorLen < 0 {
				if !slices.Contains(s.free, int32(i)) {
					t.Errorf("shard %d: slot %d is neither a record's nor free", k, i)
				}
				continue
			}
			used++
			aor := r.aor()
			if got := s.find(maphash.String(m.seed, aor), aor); got != int32(i) {
				t.Errorf("%s: in slot %d, the index finds slot %d", aor, i, got)
			}
			rec := r.view()
			if due := rec.due(); r.due != due {
				t.Errorf("%s: filed under %d, due at %d", aor, r.due, due)
			}
			if !slices.Contains(s.due[r.due], int32(i)) {
				t.Errorf("%s: not filed under its due second %d", aor, r.due)
			}
		}
		if used+len(s.free) != len(s.slots) {
			t.Errorf("shard %d: %d records and %d free slots, %d slots", k, used, len(s.free), len(s.slots))
		}
	}
}

// TestMemorySweepReadsWhatIsDue checks the index Sweep reads: an AOR is
// looked at when its earliest binding expires or its tombstone ends, not
// at every Sweep, and a registration refreshed since it was filed is not
// swept at its old time.
func TestMemorySweepReadsWhatIsDue(t *testing.T) {
	m := NewMemory()
	const n = 1000
	for i := range n {
		mustUpdate(t, m, fmt.Sprint("u", i), t0, set(binding("sip:u@1", time.Hour)))
	}
	// Half register again at 30 minutes, for another hour.
	for i := 0; i < n; i += 2 {
		mustUpdate(t, m, fmt.Sprint("u", i), t0.Add(30*time.Minute), set(binding("sip:u@1", 90*time.Minute)))
	}
	checkDue(t, m)
	filed := func() (aors int) {
		for i := range m.shards {
			for _, list := range m.shards[i].due {
				aors += len(list)
			}
		}
		return aors
	}
	if got := filed(); got != n+n/2 {
		t.Errorf("%d filings, want %d (one per write that moved an AOR's due second)", got, n+n/2)
	}
	steps := []struct {
		at          time.Duration
		wantRemoved int
		wantFiled   int // after the sweep
		wantHeld    int
	}{
		{59 * time.Minute, 0, n + n/2, n},
		{time.Hour, n / 2, n, n / 2}, // the refreshed half's old filing read and dropped
		{time.Hour + time.Second, 0, n, n / 2},
		{90 * time.Minute, n / 2, n, 0},
		{25 * time.Hour, 0, n / 2, 0}, // the first half's tombstones end
		{26 * time.Hour, 0, 0, 0},     // and the second's
	}
	for _, st := range steps {
		if got := m.Sweep(t0.Add(st.at)); got != st.wantRemoved {
			t.Errorf("sweep at %v removed %d, want %d", st.at, got, st.wantRemoved)
		}
		if got := filed(); got != st.wantFiled {
			t.Errorf("after the sweep at %v: %d filings, want %d", st.at, got, st.wantFiled)
		}
		if got, _ := m.AORs(t0); got != st.wantHeld {
			t.Errorf("after the sweep at %v: %d AORs held, want %d", st.at, got, st.wantHeld)
		}
		if aors, bindings := m.Held(); aors != st.wantHeld || bindings != st.wantHeld {
			t.Errorf("after the sweep at %v: Held() = %d, %d, want %d, %d", st.at, aors, bindings, st.wantHeld, st.wantHeld)
		}
		checkDue(t, m)
	}
	for i := range m.shards {
		if s := &m.shards[i]; len(s.index) != 0 || len(s.free) != len(s.slots) {
			t.Errorf("shard %d still has %d AORs indexed, %d of %d slots used, after every tombstone ended", i, len(s.index), len(s.slots)-len(s.free), len(s.slots))
		}
	}
}

func TestCeilSecond(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(100, 0), 100},
		{time.Unix(100, 1), 101},
		{time.Unix(100, 999_999_999), 101},
	}
	for _, tt := range tests {
		if got := ceilSecond(tt.t); got != tt.want {
			t.Errorf("ceilSecond(%v) = %d, want %d", tt.t, got, tt.want)
		}
	}
}

// TestMemoryHeldIsCount checks Held against Count, and the due index,
// through random writes and sweeps.
func TestMemoryHeldIsCount(t *testing.T) {
	m := NewMemory()
	holderWalk(t, m, func() { checkDue(t, m) })
}

// TestShardIndexChain checks the index with AORs whose hashes are equal
// (which maphash makes too rare to meet by chance): each is found in its
// own slot whichever of them is removed, and freed slots are reused.
func TestShardIndexChain(t *testing.T) {
	tests := []struct {
		remove []string // in this order, after adding a, b, c under one hash
		want   []string // found after
	}{
		{nil, []string{"a", "b", "c"}},
		{[]string{"c"}, []string{"a", "b"}}, // the chain's head (added last)
		{[]string{"b"}, []string{"a", "c"}}, // its middle
		{[]string{"a"}, []string{"b", "c"}}, // its tail
		{[]string{"b", "c", "a"}, nil},
	}
	for _, tc := range tests {
		var s shard
		s.index = map[uint64]int32{}
		slot := map[string]int32{}
		for _, aor := range []string{"a", "b", "c"} {
			var r memRecord
			r.set(aor, record{})
			slot[aor] = s.add(7, r)
		}
		s.add(8, func() (r memRecord) { r.set("d", record{}); return r }()) // another hash
		for _, aor := range tc.remove {
			s.remove(7, slot[aor])
		}
		for _, aor := range []string{"a", "b", "c"} {
			got, want := s.find(7, aor), int32(-1)
			if slices.Contains(tc.want, aor) {
				want = slot[aor]
			}
			if got != want {
				t.Errorf("removed %q: %q found in slot %d, want %d", tc.remove, aor, got, want)
			}
		}
		if got := s.find(8, "d"); got != 3 {
			t.Errorf("removed %q: d found in slot %d, want 3", tc.remove, got)
		}
		if len(tc.remove) > 0 {
			var r memRecord
			r.set("e", record{})
			if got, want := s.add(7, r), slot[tc.remove[len(tc.remove)-1]]; got != want {
				t.Errorf("removed %q: a new record took slot %d, want the freed %d", tc.remove, got, want)
			}
		}
		if _, ok := s.index[7]; !ok {
			t.Errorf("removed %q: hash 7 left the index though e has it", tc.remove)
		}
	}
}
