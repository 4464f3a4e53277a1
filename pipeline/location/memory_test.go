package location

import (
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
