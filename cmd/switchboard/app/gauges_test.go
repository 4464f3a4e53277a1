package app

import (
	"context"
	"log/slog"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// countingStore is a Store whose Count says 1 AOR, 1 binding, and counts
// its calls; holdingStore is one that is also a Holder, whose Held says 2
// AORs, 3 bindings.
type countingStore struct {
	location.Store
	counted int
}

func (s *countingStore) Count() (int, int) { s.counted++; return 1, 1 }

type holdingStore struct{ countingStore }

func (s *holdingStore) Held() (int, int) { return 2, 3 }

// TestGaugesReadHeld checks that the registration gauges read a Holder's
// counters, and only a store that keeps none is read whole with Count.
func TestGaugesReadHeld(t *testing.T) {
	counting, holding := &countingStore{}, &holdingStore{}
	tests := []struct {
		name                  string
		store                 location.Store
		counted               *int
		wantAORs, wantBinding float64
		wantCounted           int
	}{
		{"a store without counters", counting, &counting.counted, 1, 1, 2},
		{"a Holder", holding, &holding.counted, 2, 3, 0},
	}
	for _, tc := range tests {
		svc := &pipeline.Services{Location: tc.store, Log: slog.New(slog.DiscardHandler)}
		eng, err := engine.New(svc, svc.Log, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.Shutdown(context.Background()) })
		g := gauges(tc.store, svc, eng)
		if got := g.AORs(); got != tc.wantAORs {
			t.Errorf("%s: AORs gauge %g, want %g", tc.name, got, tc.wantAORs)
		}
		if got := g.Bindings(); got != tc.wantBinding {
			t.Errorf("%s: bindings gauge %g, want %g", tc.name, got, tc.wantBinding)
		}
		if *tc.counted != tc.wantCounted {
			t.Errorf("%s: Count called %d times, want %d", tc.name, *tc.counted, tc.wantCounted)
		}
	}
}
