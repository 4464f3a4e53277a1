package calllog

import (
	"strconv"
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

// TestEndedCalls: an ended call is remembered by its key's hash until
// linger after it ended; the oldest goes first past the bound.
func TestEndedCalls(t *testing.T) {
	e := newEndedCalls()
	t0 := e.epoch
	e.add(callKey{"a", "tag-a"}, t0)
	e.add(callKey{"b", "tag-b"}, t0.Add(time.Second))
	tests := []struct {
		at          time.Duration // the sweep's, after t0
		callID, tag string
		want        bool
	}{
		{0, "a", "tag-a", true},
		{0, "a", "tag-b", false},
		{0, "b", "tag-a", false},
		{0, "a", "", false},
		{linger - time.Millisecond, "a", "tag-a", true},
		{linger, "a", "tag-a", false},
		{linger, "b", "tag-b", true},
		{linger + time.Second, "b", "tag-b", false},
	}
	for i, tc := range tests {
		e.sweep(t0.Add(tc.at))
		if got := e.has(tc.callID, tc.tag); got != tc.want {
			t.Errorf("test %d: has(%q, %q) at +%v = %v, want %v", i, tc.callID, tc.tag, tc.at, got, tc.want)
		}
	}
	if e.len() != 0 || e.m != nil || e.fifo != nil {
		t.Errorf("%d ended calls, map %v, queue %v after all expired; want none, given back", e.len(), e.m, e.fifo)
	}

	// A call ended again (its INVITE sent anew) is kept from its new end.
	e.add(callKey{"c", "tag-c"}, t0)
	e.add(callKey{"c", "tag-c"}, t0.Add(10*time.Second))
	e.sweep(t0.Add(linger))
	if !e.has("c", "tag-c") {
		t.Errorf("a call ended again was forgotten at its first end's linger")
	}

	// An RFC 2543 caller's call, keyed by its Call-ID alone.
	e.add(callKey{"d", ""}, t0)
	if !e.has("d", "") || e.has("d", "x") {
		t.Errorf("a call with no caller's tag: has %v, with a tag %v", e.has("d", ""), e.has("d", "x"))
	}

	e = newEndedCalls()
	e.max = 4
	for i := range e.max + 1 {
		e.add(callKey{strconv.Itoa(i), "t"}, e.epoch)
	}
	if e.len() != e.max || e.has("0", "t") || !e.has("1", "t") || !e.has(strconv.Itoa(e.max), "t") {
		t.Errorf("past the bound: %d remembered, the first %v, the second %v", e.len(), e.has("0", "t"), e.has("1", "t"))
	}
}
