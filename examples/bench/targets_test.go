package main

import (
	"strings"
	"testing"
	"time"
)

func TestWithChildren(t *testing.T) {
	kam := targetNamed(t, "kamailio")
	got := withChildren(kam, []int{1, 2, 4}, 2)
	var names []string
	for _, v := range got {
		names = append(names, v.Name)
		if !v.Kamailio || v.Children != map[string]int{"kamailio-n2": 2, "kamailio-n4": 4, "kamailio-n8": 8}[v.Name] {
			t.Errorf("%s: %d children", v.Name, v.Children)
		}
	}
	if strings.Join(names, ",") != "kamailio-n2,kamailio-n4,kamailio-n8" {
		t.Errorf("names %v", names)
	}
	if sb := withChildren(targetNamed(t, "sb-seed"), []int{1, 2, 4}, 2); len(sb) != 1 || sb[0].Name != "sb-seed" {
		t.Errorf("a Switchboard target multiplied: %+v", sb)
	}
}

func TestCPUCount(t *testing.T) {
	tests := []struct {
		list string
		want int
	}{{"1", 1}, {"0-3", 4}, {"1,3", 2}, {"0-1,4", 3}, {"", 1}}
	for _, tc := range tests {
		if got := cpuCount(tc.list); got != tc.want {
			t.Errorf("cpuCount(%q) = %d, want %d", tc.list, got, tc.want)
		}
	}
	if o := (options{Pin: true, ProxyCPUs: "1"}); o.cores() != 1 {
		t.Errorf("pinned to one CPU: %d cores", o.cores())
	}
}

func TestParseReceiveBuffer(t *testing.T) {
	out := "UNCONN 0      0      127.0.0.1:55252 0.0.0.0:*\n\t skmem:(r0,rb8388608,t0,tb212992,f0,w0,o0,bl0,d0)\n"
	if n, err := parseReceiveBuffer([]byte(out)); err != nil || n != 8388608 {
		t.Errorf("rb %d, %v; want 8388608", n, err)
	}
	if _, err := parseReceiveBuffer([]byte("")); err == nil {
		t.Error("no socket, yet a buffer")
	}
}

// TestTargetsTable checks the targets table: Kamailio's best over its
// workers row by row, and each Switchboard figure marked as it holds.
func TestTargetsTable(t *testing.T) {
	o := fullOptions()
	o.Setup, o.Pin = "pinned", true
	o.CallRate, o.RegRate, o.LatencyRates = []int{1000, 2000}, []int{8000}, nil
	mk := func(target, work string, rate int, pass bool, cpu time.Duration, p99 float64, pss int64) step {
		s := step{Target: target, Workload: work, Rate: rate, Planned: rate * 10, Succeeded: rate * 10, ViaProxy: rate * 10,
			Wall: 10 * time.Second, ProxyCPU: cpu, P99: p99, HaveRTT: true, ProxyPSS: pss}
		if work == workRegistrations {
			s.ViaProxy = 0
		}
		if !pass {
			s.Succeeded, s.ViaProxy, s.Failed = rate*5, rate*5, rate*5
		}
		s.judge()
		return s
	}
	kam := withChildren(targetNamed(t, "kamailio"), []int{1, 2}, 1)
	r := &result{Opts: o, Targets: append([]target{targetNamed(t, "sb-seed")}, kam...), Steps: []step{
		mk("sb-seed", workCalls, 1000, true, 2500*time.Millisecond, 8, 100<<20),
		mk("kamailio-n1", workCalls, 1000, true, 6*time.Second, 12, 150<<20),
		mk("kamailio-n2", workCalls, 1000, true, 5*time.Second, 16, 140<<20),
		mk("sb-seed", workCalls, 2000, false, 9*time.Second, 900, 200<<20),
		mk("kamailio-n1", workCalls, 2000, false, 9*time.Second, 700, 150<<20),
		mk("kamailio-n2", workCalls, 2000, true, 9*time.Second, 20, 150<<20),
		mk("sb-seed", workRegistrations, 8000, true, time.Second, 30, 90<<20),
		mk("kamailio-n1", workRegistrations, 8000, true, time.Second, 40, 150<<20),
		mk("kamailio-n2", workRegistrations, 8000, true, time.Second, 50, 150<<20),
		{Target: "sb-seed", Workload: workOrder, Planned: 20000, Attempted: 20000, Overtaken: 0},
		{Target: "kamailio-n1", Workload: workOrder, Planned: 20000, Attempted: 20000, Overtaken: 3},
	}}
	var b strings.Builder
	targetsTable(&b, r)
	reportHas(t, b.String(),
		"| figure | target | sb-seed | Kamailio's best |",
		"| highest call rate with < 0.1 % failed | ≥ Kamailio's | 1000 ✗ | ≥ 2000 (kamailio-n2) |",
		"| p99 INVITE→200 at 1000 calls/s | ≤ Kamailio's | 8 ms ✓ | 12 ms (kamailio-n1) |",
		"| p99 INVITE→200 at 2000 calls/s | ≤ Kamailio's | 900 ms (step failed) ✗ | 20 ms (kamailio-n2) |",
		"| CPU per call at 1000 calls/s | ≤ 300 µs | 250 µs ✓ | 500 µs (kamailio-n2) |",
		"| memory (peak PSS) at 1000 calls/s | ≤ Kamailio's | 100 MiB ✓ | 140 MiB (kamailio-n2) |",
		"| REGISTERs/s with < 0.1 % failed | ≥ Kamailio's | ≥ 8000 ✓ | ≥ 8000 (kamailio-n1) |",
		"| p99 REGISTER→200 at 8000/s | ≤ Kamailio's | 30 ms ✓ | 40 ms (kamailio-n1) |",
		"| order check: calls out of order | 0 | 0 (0.00 %) ✓ | 3 (0.01 %) (kamailio-n1) |",
		"- sb-seed: 6 held, 2 missed, 0 not measured in this run.",
	)
	// Without Kamailio, only the fixed targets are judged.
	r.Targets = r.Targets[:1]
	b.Reset()
	targetsTable(&b, r)
	reportHas(t, b.String(), "| p99 INVITE→200 at 1000 calls/s | ≤ Kamailio's | 8 ms | n/a |", "- sb-seed: 2 held, 0 missed, 6 not measured in this run.")
}

func TestMachineLoad(t *testing.T) {
	mk := func(other time.Duration) step {
		return step{Rate: 100, Planned: 1000, OtherCPU: other}
	}
	tests := []struct {
		steps []step
		want  string
	}{
		{nil, "No step ran."},
		{[]step{mk(0), mk(100 * time.Millisecond), mk(200 * time.Millisecond)}, "1 % of a core on the median step and 2 % at most (the \"other CPU\" column): the machine was quiet."},
		{[]step{mk(0), mk(5 * time.Second), mk(12 * time.Second)}, "50 % of a core on the median step and 120 % at most (the \"other CPU\" column): **the machine was shared**"},
	}
	for i, tc := range tests {
		if got := machineLoad(&result{Steps: tc.steps}); !strings.Contains(got, tc.want) {
			t.Errorf("test %d: %q, want %q", i, got, tc.want)
		}
	}
}

// TestP99AtEqualFailure checks that a p99 from the latency series holds
// against Kamailio's only when the proxy failed no larger a share of its
// calls: one that refused 40 % keeps the p99 of the rest low.
func TestP99AtEqualFailure(t *testing.T) {
	o := fullOptions()
	o.Setup, o.Pin = "shared", false
	o.CallRate, o.RegRate, o.LatencyRates, o.LatencyRounds = nil, nil, []int{2000}, 1
	round := func(target string, failed int, p99 float64) step {
		s := step{Target: target, Workload: workLatency, Rate: 2000, Planned: 20000, Succeeded: 20000 - failed,
			Failed: failed, ViaProxy: 20000 - failed, Wall: 10 * time.Second, P99: p99, HaveRTT: true}
		s.judge()
		return s
	}
	tests := []struct {
		sbFailed, kamFailed int
		want                string
	}{
		{8000, 400, "| p99 INVITE→200 at 2000 calls/s | ≤ Kamailio's | 600 ms (median), 40.0 % failed ✗ | 2000 ms (median), 2.0 % failed (kamailio-n2) |"},
		{400, 8000, "| p99 INVITE→200 at 2000 calls/s | ≤ Kamailio's | 600 ms (median), 2.0 % failed ✓ | 2000 ms (median), 40.0 % failed (kamailio-n2) |"},
		{10, 0, "| p99 INVITE→200 at 2000 calls/s | ≤ Kamailio's | 600 ms (median) ✓ | 2000 ms (median) (kamailio-n2) |"},
	}
	for _, tc := range tests {
		r := &result{Opts: o, Targets: append([]target{targetNamed(t, "sb-seed")}, withChildren(targetNamed(t, "kamailio"), []int{1}, 2)...),
			Steps: []step{round("sb-seed", tc.sbFailed, 600), round("kamailio-n2", tc.kamFailed, 2000)}}
		var b strings.Builder
		targetsTable(&b, r)
		// No calls series ran: neither passed a rate, which holds nothing.
		reportHas(t, b.String(), tc.want, "| highest call rate with < 0.1 % failed | ≥ Kamailio's | none passed | none passed (kamailio-n2) |")
	}
}
