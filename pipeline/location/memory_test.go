package location

import (
	"fmt"
	"math/rand/v2"
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
			if _, ok := m.shard(aor).aors[aor]; ok {
				kept = append(kept, aor)
			}
		}
		if !slices.Equal(kept, tc.want) {
			t.Errorf("test %d: kept AORs %q, want %q", i, kept, tc.want)
		}
	}
}

// checkDue fails unless every record of m is filed under its due second,
// that second is in its shard's heap, and the heap holds every filed
// second once.
func checkDue(t *testing.T, m *Memory) {
	t.Helper()
	for i := range m.shards {
		s := &m.shards[i]
		if len(s.seconds) != len(s.due) {
			t.Errorf("shard %d: %d seconds in the heap, %d filed", i, len(s.seconds), len(s.due))
		}
		for _, sec := range s.seconds {
			if _, ok := s.due[sec]; !ok {
				t.Errorf("shard %d: second %d in the heap, nothing filed", i, sec)
			}
		}
		for aor, r := range s.aors {
			if r.due != r.nextDue() {
				t.Errorf("%s: filed under %d, due at %d", aor, r.due, r.nextDue())
			}
			if !slices.Contains(s.due[r.due], aor) {
				t.Errorf("%s: not filed under its due second %d", aor, r.due)
			}
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
		if len(m.shards[i].aors) != 0 {
			t.Errorf("shard %d still has %d records after every tombstone ended", i, len(m.shards[i].aors))
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

// TestMemoryHeldIsCount checks that Held, kept by Update and Sweep, agrees
// with Count (which reads every record) once a Sweep has run, through
// registrations, refreshes, removals and expiries in random order.
func TestMemoryHeldIsCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	m := NewMemory()
	now := t0
	m.clock = func() time.Time { return now }
	for step := range 2000 {
		now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		aor := fmt.Sprint("u", rng.IntN(50))
		var bs []Binding
		for i := range rng.IntN(4) { // 0 to 3 bindings; none removes them all
			bs = append(bs, Binding{Contact: fmt.Sprint("sip:", aor, "@", i), Expires: now.Add(time.Duration(1+rng.IntN(600)) * time.Second)})
		}
		mustUpdate(t, m, aor, now, set(bs...))
		if step%7 == 0 {
			m.Sweep(now)
			aors, bindings := m.Count()
			if ha, hb := m.Held(); ha != aors || hb != bindings {
				t.Fatalf("step %d: Held() = %d, %d; Count() = %d, %d", step, ha, hb, aors, bindings)
			}
			checkDue(t, m)
		}
	}
}
