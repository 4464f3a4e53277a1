package calllog

import (
	"testing"
	"time"
)

// TestTrackerDetach: the tracker's limits are those of the newest stage
// attached, and go back to the one before when it is detached (the stage
// of a reload whose build failed).
func TestTrackerDetach(t *testing.T) {
	tr := newTracker(time.Hour)
	defer tr.Close()
	running, failed := New(), New()
	tr.attach(running, time.Hour, 10, nil)
	tr.attach(failed, time.Minute, 2, nil)
	tests := []struct {
		detach   *CallLog
		maxCall  time.Duration
		maxCalls int
	}{
		{nil, time.Minute, 2},
		{failed, time.Hour, 10},
		{running, time.Hour, 10},
	}
	for i, tc := range tests {
		if tc.detach != nil {
			tr.detach(tc.detach)
		}
		if tr.maxCall != tc.maxCall || tr.maxCalls != tc.maxCalls {
			t.Errorf("test %d: max_call %v, max_calls %d; want %v, %d", i, tr.maxCall, tr.maxCalls, tc.maxCall, tc.maxCalls)
		}
	}
	if len(tr.attached) != 0 {
		t.Errorf("%d stages still attached", len(tr.attached))
	}
}
