package location

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"
)

// heapInuse returns the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestMemoryAfterRegistrationFlood registers ever new AORs and removes
// them (what a scan of an open registrar does), then lets their
// tombstones end: the store's memory must go back to what it was.
func TestMemoryAfterRegistrationFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood")
	}
	n := 30000
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_FLOOD")); err == nil && v > 0 {
		n = v
	}
	m := NewMemory()
	now := time.Unix(1_800_000_000, 0)
	before := heapInuse()
	for i := range n {
		aor := fmt.Sprintf("scan%d", i)
		b := Binding{Contact: "sip:" + aor + "@192.0.2.10:5060", CallID: aor, CSeq: 1, Expires: now.Add(time.Hour), Received: "192.0.2.10:5060", Transport: "UDP"}
		if _, err := m.Update(aor, now, func([]Binding) ([]Binding, error) { return []Binding{b}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	registered := heapInuse()
	for i := range n {
		if _, err := m.Update(fmt.Sprintf("scan%d", i), now, func([]Binding) ([]Binding, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	m.Sweep(now.Add(time.Second))
	removed := heapInuse()
	m.Sweep(now.Add(TombstoneTTL + time.Minute))
	forgotten := heapInuse()
	mb := func(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	t.Logf("%d AORs: heap in use %s before, %s registered, %s removed (tombstones), %s once forgotten",
		n, mb(before), mb(registered), mb(removed), mb(forgotten))
	if aors, bindings := m.Count(); aors != 0 || bindings != 0 {
		t.Fatalf("Count() = %d, %d after every AOR was forgotten", aors, bindings)
	}
	// What the shards keep once every AOR is forgotten: at most a tenth
	// of what the registrations took.
	if kept := int64(forgotten) - int64(before); kept > int64(registered-before)/10 {
		t.Errorf("the store keeps %s of heap once every AOR is forgotten (the registrations took %s)", mb(uint64(kept)), mb(registered-before))
	}
	runtime.KeepAlive(m)
}

// TestMemoryCompacts frees most of a store's slots and checks that the
// shards, compacted by Sweep, still find every AOR left and sweep its
// bindings when they expire.
func TestMemoryCompacts(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1_800_000_000, 0)
	const n, kept = 24000, 3000 // more than compactFree freed in each shard
	register := func(aor string, expires time.Time) {
		b := Binding{Contact: "sip:" + aor + "@192.0.2.10", CallID: aor, CSeq: 1, Expires: expires}
		if _, err := m.Update(aor, now, func([]Binding) ([]Binding, error) { return []Binding{b}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		register(fmt.Sprintf("u%d", i), now.Add(48*time.Hour))
	}
	for i := kept; i < n; i++ {
		if _, err := m.Update(fmt.Sprintf("u%d", i), now, func([]Binding) ([]Binding, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	m.Sweep(now.Add(TombstoneTTL + time.Second)) // forgets the removed AORs
	slots := 0
	for i := range m.shards {
		slots += len(m.shards[i].slots)
	}
	if slots != kept {
		t.Errorf("%d slots after the sweep, want %d: the shards were not compacted", slots, kept)
	}
	for i := range n {
		bindings, known, _ := m.Lookup(fmt.Sprintf("u%d", i), now.Add(TombstoneTTL+time.Second))
		if want := i < kept; known != want || (len(bindings) == 1) != want {
			t.Errorf("u%d: %d bindings, known %v; want known %v", i, len(bindings), known, want)
		}
	}
	register("new", now.Add(time.Hour))
	if got := m.Sweep(now.Add(48*time.Hour + time.Second)); got != kept+1 {
		t.Errorf("the sweep at expiry removed %d bindings, want %d", got, kept+1)
	}
	if aors, bindings := m.Held(); aors != 0 || bindings != 0 {
		t.Errorf("Held() = %d, %d after every binding expired", aors, bindings)
	}
}
