package main

// The targets of issue 19, side by side for each Switchboard and the best
// Kamailio of a setup: whether each holds is the question the full run
// answers.

import (
	"fmt"
	"strings"
	"time"
)

// The rates the targets are read at.
const (
	targetCallRate  = 1000 // CPU per call, memory, p99
	targetCallRate2 = 2000 // p99
	targetRegRate   = 8000 // p99 REGISTER→200
	// targetCPUPerCall is the most CPU a call may take at targetCallRate.
	targetCPUPerCall = 300 * time.Microsecond
)

// value is one figure of one proxy: v is the number compared, text how it
// reads; ok is false when it was not measured.
type value struct {
	v    float64
	text string
	ok   bool
	// failed is the share of the calls (or REGISTERs) the figure's step
	// failed, the median over a latency series' rounds. A proxy that
	// refuses calls under load keeps the p99 (and the memory) of those it
	// carries low: a figure compared with Kamailio's holds only when the
	// proxy failed no larger a share than Kamailio did.
	failed float64
}

// allowedFailures is the share of failures a step may have and pass.
const allowedFailures = 0.001

// objective is a row of the targets table: how to read a proxy's figure,
// whether a higher one is better, and the target when it is fixed rather
// than Kamailio's figure (0: Kamailio's).
type objective struct {
	name   string
	read   func(r *result, target string) value
	higher bool
	fixed  float64
	goal   string
}

var objectives = []objective{
	{name: "highest call rate with < 0.1 % failed", read: seriesRate(workCalls), higher: true, goal: "≥ Kamailio's"},
	{name: fmt.Sprintf("p99 INVITE→200 at %d calls/s", targetCallRate), read: callP99(targetCallRate), goal: "≤ Kamailio's"},
	{name: fmt.Sprintf("p99 INVITE→200 at %d calls/s", targetCallRate2), read: callP99(targetCallRate2), goal: "≤ Kamailio's"},
	{name: fmt.Sprintf("CPU per call at %d calls/s", targetCallRate), read: cpuAt(targetCallRate),
		fixed: float64(targetCPUPerCall), goal: "≤ " + fmtDur(targetCPUPerCall)},
	{name: fmt.Sprintf("memory (peak PSS) at %d calls/s", targetCallRate), read: pssAt(targetCallRate), goal: "≤ Kamailio's"},
	{name: "REGISTERs/s with < 0.1 % failed", read: seriesRate(workRegistrations), higher: true, goal: "≥ Kamailio's"},
	{name: fmt.Sprintf("p99 REGISTER→200 at %d/s", targetRegRate), read: regP99(targetRegRate), goal: "≤ Kamailio's"},
	{name: "order check: calls out of order", read: outOfOrder, fixed: -1, goal: "0"},
}

// targetsTable renders the targets of r: a column for each Switchboard,
// one for Kamailio's best figure of each row (over its numbers of
// workers, and which), and each Switchboard figure marked ✓ where it
// holds, ✗ where it does not.
func targetsTable(b *strings.Builder, r *result) {
	var sb, kam []target
	for _, t := range r.Targets {
		if t.Kamailio {
			kam = append(kam, t)
		} else {
			sb = append(sb, t)
		}
	}
	fmt.Fprintf(b, "Targets of issue 19 in the %s setup (p99 from the latency series' median where it played the rate, "+
		"else from the series' step; ✓ holds, ✗ does not, a figure from a failed step is marked so):\n\n", r.Opts.Setup)
	b.WriteString("| figure | target |")
	for _, t := range sb {
		fmt.Fprintf(b, " %s |", t.Name)
	}
	b.WriteString(" Kamailio's best |\n|---|---|" + strings.Repeat("--:|", len(sb)+1) + "\n")
	held, missed := make([]int, len(sb)), make([]int, len(sb))
	for _, ob := range objectives {
		best, bestName := value{}, ""
		for _, t := range kam {
			v := ob.read(r, t.Name)
			if v.ok && (!best.ok || ob.higher && v.v > best.v || !ob.higher && v.v < best.v) {
				best, bestName = v, t.Name
			}
		}
		fmt.Fprintf(b, "| %s | %s |", ob.name, ob.goal)
		for i, t := range sb {
			v := ob.read(r, t.Name)
			mark := ""
			if holds, known := ob.holds(v, best); known && holds {
				mark, held[i] = " ✓", held[i]+1
			} else if known {
				mark, missed[i] = " ✗", missed[i]+1
			}
			fmt.Fprintf(b, " %s%s |", v.text, mark)
		}
		if best.ok {
			fmt.Fprintf(b, " %s (%s) |\n", best.text, bestName)
		} else {
			b.WriteString(" n/a |\n")
		}
	}
	b.WriteString("\n")
	for i, t := range sb {
		fmt.Fprintf(b, "- %s: %d held, %d missed, %d not measured in this run.\n", t.Name, held[i], missed[i], len(objectives)-held[i]-missed[i])
	}
	b.WriteString("\n")
}

// holds says whether v meets the objective against Kamailio's best k,
// and whether that is known (both measured).
func (ob objective) holds(v, k value) (holds, known bool) {
	switch {
	case !v.ok:
		return false, false
	case ob.fixed < 0:
		return v.v == 0, true
	case ob.fixed > 0:
		return v.v <= ob.fixed, true
	case !k.ok:
		return false, false
	case v.failed > max(k.failed, allowedFailures):
		return false, true
	case ob.higher && v.v == 0 && k.v == 0:
		return false, false // neither passed a step: nothing to compare
	case ob.higher:
		return v.v >= k.v, true
	}
	return v.v <= k.v, true
}

// lastTry returns the step of target's workload at rate that counts: its
// last try.
func lastTry(r *result, target, workload string, rate int) *step {
	var out *step
	for i := range r.Steps {
		if st := &r.Steps[i]; st.Target == target && st.Workload == workload && st.Rate == rate {
			out = st
		}
	}
	return out
}

func summaryOf(r *result, target string) *summary {
	for _, s := range summarize(r) {
		if s.Target == target {
			return &s
		}
	}
	return nil
}

// seriesRate reads the highest rate a proxy passed in the calls or the
// registrations series.
func seriesRate(workload string) func(*result, string) value {
	return func(r *result, target string) value {
		s := summaryOf(r, target)
		if s == nil {
			return value{}
		}
		rate, top := s.Calls, s.CallsTop
		if workload == workRegistrations {
			rate, top = s.Regs, s.RegsTop
		}
		return value{v: float64(rate), text: figure(rate, top), ok: true}
	}
}

// failed marks a figure read from a step that failed.
func failed(text string, st *step) string {
	if !st.Pass {
		return text + " (step failed)"
	}
	return text
}

// callP99 reads the p99 INVITE→200 at rate: the median of the latency
// series' rounds, or the calls series' step.
func callP99(rate int) func(*result, string) value {
	fromStep := atStep(workCalls, rate, stepP99)
	return func(r *result, target string) value {
		if rounds := latencyRounds(r, target, rate); haveRTT(rounds) {
			v, failed := median(rounds, p99), median(rounds, failShare)
			return value{v, withFailed(fmtMS(v, true)+" (median)", failed), true, failed}
		}
		return fromStep(r, target)
	}
}

func regP99(rate int) func(*result, string) value { return atStep(workRegistrations, rate, stepP99) }
func cpuAt(rate int) func(*result, string) value  { return atStep(workCalls, rate, stepCPU) }
func pssAt(rate int) func(*result, string) value  { return atStep(workCalls, rate, stepPSS) }

// atStep reads a figure of the step of a workload at rate (its last try)
// with f, which returns the number, its text, and whether it was measured.
func atStep(workload string, rate int, f func(*step) (float64, string, bool)) func(*result, string) value {
	return func(r *result, target string) value {
		st := lastTry(r, target, workload, rate)
		if st == nil {
			return value{text: "n/a"}
		}
		v, text, ok := f(st)
		if !ok {
			return value{text: "n/a"}
		}
		return value{v, failed(text, st), true, failShare(st)}
	}
}

// failShare is the share of a step's calls (or REGISTERs) that failed.
func failShare(st *step) float64 {
	if st.Planned == 0 {
		return 0
	}
	return float64(st.Failed) / float64(st.Planned)
}

// withFailed adds to a latency figure the share of calls that failed,
// when more did than a step may.
func withFailed(text string, failed float64) string {
	if failed <= allowedFailures {
		return text
	}
	return fmt.Sprintf("%s, %.1f %% failed", text, 100*failed)
}

func stepP99(st *step) (float64, string, bool) { return st.P99, fmtMS(st.P99, true), st.HaveRTT }
func stepCPU(st *step) (float64, string, bool) {
	return float64(st.CPUPerOp()), fmtDur(st.CPUPerOp()), st.Succeeded > 0
}
func stepPSS(st *step) (float64, string, bool) {
	return float64(st.ProxyPSS), mib(st.ProxyPSS), st.ProxyPSS > 0
}

func outOfOrder(r *result, target string) value {
	for _, st := range orderSteps(r) {
		if st.Target == target && st.Err == "" {
			return value{v: float64(st.Overtaken), text: share(st.Overtaken, st.Planned), ok: true}
		}
	}
	return value{text: "n/a"}
}
