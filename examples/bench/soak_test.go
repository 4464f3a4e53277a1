package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadGCTrace(t *testing.T) {
	log := `time=2026-12-06T18:58:01Z level=INFO msg=ready
gc 1 @0.012s 1%: 0.010+1.5+0.020 ms clock, 0.020+0.1/1.0/0+0.040 ms cpu, 3->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @61.500s 3%: 0.5+20+0.5 ms clock, 1.0+2/15/0+1.0 ms cpu, 100->110->55 MB, 112 MB goal, 1 MB stacks, 0 MB globals, 2 P
not a gc line
`
	path := filepath.Join(t.TempDir(), "proxy.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readGCTrace(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []gcCycle{{At: 12 - 1000, Clock: 1.53, Live: 1}, {At: 61500 - 1000, Clock: 21, Live: 55}}
	if len(got) != len(want) {
		t.Fatalf("got %d cycles, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if d := got[i].Clock - want[i].Clock; got[i].At != want[i].At || d > 1e-9 || d < -1e-9 || got[i].Live != want[i].Live {
			t.Errorf("cycle %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseClock(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"00:00:00", 0, true},
		{"00:01:05", 65 * time.Second, true},
		{"01:00:00:123456", time.Hour, true},
		{"1:2", 0, false},
		{"aa:00:00", 0, false},
	} {
		got, err := parseClock(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseClock(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestSoakMinutes(t *testing.T) {
	rs := []rtt{{at: 1000, ms: 2}, {at: 59000, ms: 4}, {at: 61000, ms: 40}, {at: 125000, ms: 8}} // the last after the 2 minutes
	failed := map[int][2]int{0: {1, 3}, 1: {0, 1}, 2: {2, 0}}
	gcs := []gcCycle{{At: 500, Clock: 1, Live: 10}, {At: 70000, Clock: 2, Live: 30}, {At: 80000, Clock: 2, Live: 20}}
	samples := []minuteSample{{RSS: 100 << 20, PSS: 90 << 20, CPU: 30 * time.Second}, {RSS: 110 << 20, PSS: 95 << 20, CPU: 75 * time.Second}}
	got := soakMinutes(rs, failed, gcs, samples, 2*time.Minute)
	if len(got) != 2 {
		t.Fatalf("got %d minutes, want 2: %+v", len(got), got)
	}
	first, second := got[0], got[1]
	if first.Answered != 2 || first.Failed != 1 || first.Retrans != 3 || first.GCs != 1 || first.HeapLive != 10 || first.CPU != 0 || first.P99 != 4 {
		t.Errorf("minute 1: %+v", first)
	}
	if second.Answered != 2 || second.Failed != 2 || second.Retrans != 1 || second.GCs != 2 || second.HeapLive != 30 || second.CPU != 45*time.Second || second.Max != 40 {
		t.Errorf("minute 2 (with what came after it): %+v", second)
	}
}

func TestSoakTail(t *testing.T) {
	var rs []rtt
	for i := range 200 {
		rs = append(rs, rtt{at: float64(1000 * i), ms: 1})
	}
	// The two slowest calls waited across a cycle; one fast call too.
	rs[50].ms, rs[150].ms = 300, 300
	run := &soakRun{Dur: 200 * time.Second, GCs: []gcCycle{
		{At: 49900, Clock: 10}, {At: 149800, Clock: 10}, {At: 99999.5, Clock: 1},
	}}
	run.tail(rs)
	if run.Tail != 2 || run.SlowInGC != 1 || run.AllInGC != 3.0/200 {
		t.Errorf("tail: %d slow, %.2f of them in a cycle, %.3f of all; want 2, 1, 0.015", run.Tail, run.SlowInGC, run.AllInGC)
	}
	if want := 21.0 / 200000; run.GCShare < want*0.999 || run.GCShare > want*1.001 {
		t.Errorf("GC share %v, want %v", run.GCShare, want)
	}
}

func TestFailuresByMinute(t *testing.T) {
	stat := "StartTime;ElapsedTime(P);ElapsedTime(C);FailedCall(P);FailedCall(C);Retransmissions(P);Retransmissions(C)\n" +
		"x;00:00:01;00:00:01;2;2;5;5\n" +
		"x;00:00:01;00:00:59;1;3;0;5\n" +
		"x;00:00:01;00:01:00;4;7;1;6\n" +
		"x;00:00:01;not a time;9;16;9;15\n"
	path := filepath.Join(t.TempDir(), "uac_stat.csv")
	if err := os.WriteFile(path, []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := failuresByMinute(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][2]int{0: {3, 5}, 1: {4, 1}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("failures by minute %v, want %v", got, want)
	}
}
