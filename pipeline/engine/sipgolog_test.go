package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
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

// TestQuietHandlerUDP checks that the logger sipgo gives its UDP transport
// is told from the others, and always passes its errors to Handle, whatever
// the level of the handler it wraps.
func TestQuietHandlerUDP(t *testing.T) {
	inner := slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 4})
	base := slog.New(newQuietHandler(inner)).With("layer", "transport").With("caller", "TransportLayer")
	tests := []struct {
		caller string
		udp    bool
	}{
		{"Transport<UDP>", true},
		{"Transport<TCP>", false},
		{"TransactionLayer", false},
	}
	for i, tc := range tests {
		h := base.With("caller", tc.caller).Handler().(*quietHandler)
		if h.udp != tc.udp || h.Enabled(context.Background(), slog.LevelError) != tc.udp {
			t.Errorf("test %d (%s): udp %v, enabled %v, want %v", i, tc.caller, h.udp, h.Enabled(context.Background(), slog.LevelError), tc.udp)
		}
	}
	r := slog.NewRecord(time.Now(), slog.LevelError, "failed to parse", 0)
	r.AddAttrs(slog.String("data", "INVITE x"), slog.Any("error", errors.New("invalid uri scheme")))
	if data, cause := parseFailure(r); data != "INVITE x" || cause != "invalid uri scheme" {
		t.Errorf("parseFailure: %q, %q", data, cause)
	}
}
