package pipeline

import (
	"testing"
	"time"
)

// TestHoldRetire checks that Wait waits for every held transaction, that
// a transaction may still start while it waits, and that none starts once
// the pipeline is retired.
func TestHoldRetire(t *testing.T) {
	p := &Pipeline{}
	if !p.Hold() {
		t.Fatal("a new pipeline refused a transaction")
	}
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	time.Sleep(10 * time.Millisecond)
	if !p.Hold() {
		t.Fatal("a pipeline being retired refused a transaction while another ran")
	}
	p.Release()
	select {
	case <-done:
		t.Fatal("Wait returned with a transaction held")
	case <-time.After(20 * time.Millisecond):
	}
	p.Release()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the last Release")
	}
	if p.Hold() {
		t.Error("a retired pipeline took a transaction")
	}
}
