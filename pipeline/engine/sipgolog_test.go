package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestQuietHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newQuietHandler(slog.NewTextHandler(&buf, nil))).With("layer", "transport")
	long := strings.Repeat("x", 5000)
	for range 50 {
		log.Error("failed to parse", "data", long)
	}
	log.Info("an info line always passes")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	errors := 0
	for _, l := range lines {
		if strings.Contains(l, "failed to parse") {
			errors++
			if len(l) > 2*maxAttr+200 {
				t.Errorf("line not cut: %d bytes", len(l))
			}
		}
	}
	// The 50 lines take microseconds; should they straddle a second,
	// two bursts pass.
	if errors != burst && errors != 2*burst {
		t.Errorf("%d error lines passed, want %d (or %d across a second)", errors, burst, 2*burst)
	}
	if !strings.Contains(buf.String(), "an info line always passes") || !strings.Contains(buf.String(), "layer=transport") {
		t.Errorf("log:\n%s", buf.String())
	}
}
