package app

import (
	"log/slog"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func TestHeadroomPercent(t *testing.T) {
	tests := []struct {
		headroom config.Size
		live     uint64
		want     int
	}{
		{64 << 20, 16 << 20, 400},   // a small live heap: the headroom decides
		{64 << 20, 64 << 20, 100},   // as large as the headroom: Go's default
		{64 << 20, 512 << 20, 100},  // larger: Go's default, never less
		{64 << 20, 0, 1600},         // under 4 MiB counts as 4 MiB
		{4 << 20, 300 << 10, 100},   // 4 MiB: Go's default whatever is live
		{1 << 40, 1 << 20, 100_000}, // bounded
	}
	for i, tc := range tests {
		if got := headroomPercent(tc.headroom, tc.live); got != tc.want {
			t.Errorf("test %d: headroom %s, live %d: GOGC %d, want %d", i, tc.headroom, tc.live, got, tc.want)
		}
	}
}

// gogc is the collector's GOGC now, read without setting it (a tune
// after a collection may set it at any time).
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC collects until ok(GOGC) holds, for at most 10 s.
func waitGOGC(t *testing.T, what string, ok func(int) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(gogc()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d 10 s after %s", gogc(), what)
		}
		runtime.GC()
	}
}

// TestGCHeadroom checks that the headroom follows the live heap from one
// collection to the next, and that the GOGC environment variable
// replaces it.
func TestGCHeadroom(t *testing.T) {
	percent, _ := startGC()
	var logs stagetest.Logs
	log := slog.New(slog.NewTextHandler(&logs, nil))
	gc := &collector{}
	defer gc.stop()

	t.Setenv("GOGC", "")
	gc.apply(0, 64<<20, log)
	if !strings.Contains(logs.String(), "gc_headroom=64MiB") {
		t.Errorf("the log does not say the headroom:\n%s", logs.String())
	}
	// This test's live heap is some MiB: a GOGC of several hundred.
	if p := gogc(); p <= 200 {
		t.Errorf("GOGC %d with a headroom of 64 MiB and a small live heap, want more than 200", p)
	}
	// 256 MiB live: the collections that follow bring GOGC to 100; let
	// go, GOGC goes back up (the hook runs after every collection, not
	// only the first).
	held := make([]byte, 256<<20)
	for i := 0; i < len(held); i += 4096 {
		held[i] = 1
	}
	waitGOGC(t, "256 MiB became live", func(p int) bool { return p == 100 })
	runtime.KeepAlive(held)
	held = nil
	waitGOGC(t, "256 MiB was let go", func(p int) bool { return p > 200 })

	// The operator's GOGC stands.
	t.Setenv("GOGC", "150")
	gc.apply(0, 128<<20, log)
	runtime.GC()
	if p := gogc(); p != percent {
		t.Errorf("GOGC %d with the GOGC environment variable set, want the process's own %d", p, percent)
	}
}
