package engine

import (
	"slices"
	"testing"
	"time"
)

// TestFloodRelease feeds the count of transactions held, one a second,
// and checks when the memory is given back: once the count has stayed
// below a quarter of a peak of at least least for delay, and only once.
func TestFloodRelease(t *testing.T) {
	tests := []struct {
		name  string
		held  []int64
		every time.Duration
		after []int // the ticks after which the memory is given back
	}{
		{"no flood", []int64{10, 1500, 1999, 0, 0, 0, 0, 0}, 0, nil},
		{"a flood, then quiet", []int64{100, 5000, 9000, 3000, 2000, 100, 0, 0, 0, 0, 0}, 0, []int{6}},
		{"busy again before the delay", []int64{9000, 100, 0, 5000, 5000, 5000, 5000}, 0, nil},
		{"two floods", []int64{9000, 0, 0, 0, 0, 8000, 0, 0, 0, 0}, 0, []int{3, 8}},
		{"some left at the release, given back again when they end", []int64{9000, 1000, 1000, 1000, 1000, 500, 0, 0, 0, 0}, 0, []int{3, 6}},
		{"two floods within every", []int64{9000, 0, 0, 0, 0, 8000, 0, 0, 0, 0, 0, 0, 0}, 8 * time.Second, []int{3, 11}},
	}
	for _, tc := range tests {
		var got []int
		tick := 0
		r := &floodRelease{least: 2000, delay: 2 * time.Second, every: tc.every, release: func() { got = append(got, tick) }}
		start := time.Unix(1_800_000_000, 0)
		for i, held := range tc.held {
			tick = i
			r.tick(start.Add(time.Duration(i)*time.Second), held)
		}
		if !slices.Equal(got, tc.after) {
			t.Errorf("%s: given back after ticks %v, want %v", tc.name, got, tc.after)
		}
	}
}
