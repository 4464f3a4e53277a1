package app

import (
	"log/slog"
	"runtime"
	"runtime/debug"
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

// gogc is the collector's GOGC now.
func gogc() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestGCHeadroom checks that the headroom follows the live heap from one
// collection to the next, and that the GOGC environment variable
// replaces it.
func TestGCHeadroom(t *testing.T) {
	percent, _ := startGC()
	var logs stagetest.Logs
	log := slog.New(slog.NewTextHandler(&logs, nil))
	gc := &collector{}
	defer gc.apply(0, 0, log)

	t.Setenv("GOGC", "")
	gc.apply(0, 256<<20, log)
	if !strings.Contains(logs.String(), "gc_headroom=256MiB") {
		t.Errorf("the log does not say the headroom:\n%s", logs.String())
	}
	// This test's live heap is some MiB: a GOGC of several hundred.
	if p := gogc(); p <= 200 {
		t.Errorf("GOGC %d with a headroom of 256 MiB and a small live heap, want more than 200", p)
	}
	// Half a GiB live: the next collections bring GOGC back to 100.
	held := make([]byte, 512<<20)
	for i := 0; i < len(held); i += 4096 {
		held[i] = 1
	}
	for deadline := time.Now().Add(10 * time.Second); gogc() != 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d 10 s after 512 MiB became live, want 100", gogc())
		}
		runtime.GC()
	}
	runtime.KeepAlive(held)

	// The operator's GOGC stands.
	t.Setenv("GOGC", "150")
	gc.apply(0, 128<<20, log)
	runtime.GC()
	if p := gogc(); p != percent {
		t.Errorf("GOGC %d with the GOGC environment variable set, want the process's own %d", p, percent)
	}
}
