package main

// A step: one offered rate of one workload against one proxy, what was
// measured, and whether it passed.

import (
	"fmt"
	"strings"
	"time"
)

// step is one offered rate of one workload against one proxy.
type step struct {
	Target   string
	Workload string
	Rate     int // offered, per second
	Planned  int // calls (or REGISTERs) sipp was told to make
	Try      int // 1, or 2 and more for a rate played again after a failure; the round of a latency step

	Attempted  int // created by sipp
	Succeeded  int
	Failed     int // Planned - Succeeded
	Retrans    int // retransmissions, caller and callee
	Unexpected int // unexpected and out-of-call messages, caller and callee
	// ViaProxy counts the calls the callee completed, its checks passed:
	// Record-Route on the INVITE, ACK and BYE loose-routed through the
	// proxy. Registrations leave it 0.
	ViaProxy int
	// Overtaken counts, in the order check, the calls whose 200 reached
	// the caller before their 180; Refused those answered a final error
	// instead of the 180, by status code.
	Overtaken int
	Refused   map[int]int

	Wall     time.Duration // the caller's run, start to exit
	P50, P99 float64       // rtd 1 (INVITE to 200, REGISTER to 200), ms
	HaveRTT  bool
	// Answered is the rate of the 200s of rtd 1, per second (0: unknown).
	Answered float64

	ProxyCPU time.Duration
	// ProfiledCPU is the proxy's CPU time while its CPU profile was
	// taken, if one was (0: none, or unknown).
	ProfiledCPU time.Duration
	// ProxyPSS is the peak of the proxy's proportional set size, summed
	// over its processes, sampled every 100 ms; bytes.
	ProxyPSS int64
	UACCPU   time.Duration
	UASCPU   time.Duration
	// OtherCPU is the machine's busy time that was neither the proxy's
	// nor sipp's: other processes, the kernel's work for them.
	OtherCPU time.Duration
	// UDPDrops counts the datagrams the kernel dropped at a full socket
	// receive buffer during the step, on any socket of the machine;
	// ProxyDrops those dropped at the proxy's own socket.
	UDPDrops   int64
	ProxyDrops int64
	Load       string // /proc/loadavg at the start

	Err  string // the harness could not run the step
	Pass bool
	Why  string // why it did not pass
}

// Achieved is the rate carried: the rate at which the 200s of the INVITEs
// (or REGISTERs) came, from the first to the last. Without response times,
// it is the successful calls per second of the caller's run (which counts
// the wait for a call that failed, up to -recv_timeout, too).
func (s step) Achieved() float64 {
	if s.Answered > 0 {
		return s.Answered
	}
	if s.Wall <= 0 {
		return 0
	}
	return float64(s.Succeeded) / s.Wall.Seconds()
}

// pct returns d as a percentage of one core over the time the rate was
// offered, or over the caller's run when that lasted longer: CPU is
// measured over the whole run, which goes on past the offered time while
// failed calls are retransmitted and wait for their timeouts, and a
// share of more cores than the proxy has would mean nothing.
func (s step) pct(d time.Duration) float64 {
	if s.Rate <= 0 || s.Planned <= 0 {
		return 0
	}
	return 100 * d.Seconds() / max(s.seconds(), s.Wall.Seconds())
}

// seconds is how long the rate was offered: the planned calls over the
// rate. The caller's run lasts longer when a call fails (it waits up to
// -recv_timeout for it).
func (s step) seconds() float64 { return float64(s.Planned) / float64(s.Rate) }

// disturbed reports whether other processes took half a core or more
// while the step ran: its failure says little about the proxy.
func (s step) disturbed() bool { return s.pct(s.OtherCPU) >= 50 }

// CPUPerOp is the proxy's CPU time per successful call or registration.
func (s step) CPUPerOp() time.Duration {
	if s.Succeeded == 0 {
		return 0
	}
	return s.ProxyCPU / time.Duration(s.Succeeded)
}

// count fills in the step's counters from the caller's statistics and
// the callees'.
func (s *step) count(caller counters, callees ...counters) {
	s.Attempted = caller.int("OutgoingCall")
	s.Succeeded = caller.int("SuccessfulCall")
	s.Failed = s.Planned - s.Succeeded
	for _, c := range append([]counters{caller}, callees...) {
		s.Retrans += c.int("Retransmissions")
		s.Unexpected += c.int("FailedUnexpectedMessage") + c.int("OutOfCallMsgs")
	}
}

// judge sets Pass and Why: under 0.1 % of the planned calls failed, no
// unexpected message, every call verified through the proxy, and at least
// 90 % of the offered rate carried.
func (s *step) judge() {
	var why []string
	if s.Err != "" {
		why = append(why, s.Err)
	}
	if s.Planned > 0 && s.Failed*1000 >= s.Planned {
		why = append(why, fmt.Sprintf("%d of %d failed (%.2f%%)", s.Failed, s.Planned, 100*float64(s.Failed)/float64(s.Planned)))
	}
	if s.Unexpected > 0 {
		why = append(why, fmt.Sprintf("%d unexpected messages", s.Unexpected))
	}
	if s.Workload != workRegistrations && s.ViaProxy < s.Succeeded {
		why = append(why, fmt.Sprintf("only %d of %d calls verified at the callee", s.ViaProxy, s.Succeeded))
	}
	if a := s.Achieved(); a < 0.9*float64(s.Rate) {
		why = append(why, fmt.Sprintf("carried %.0f/s of %d/s offered", a, s.Rate))
	}
	s.Pass = len(why) == 0
	s.Why = strings.Join(why, "; ")
}

// progressLine sums a step up on one line.
func progressLine(s step) string {
	verdict := "pass"
	if !s.Pass {
		verdict = "FAIL: " + s.Why
	}
	return fmt.Sprintf("%-10s %-13s %5d/s: %d/%d ok, %.0f/s carried, p50 %s p99 %s, proxy %.0f%% CPU %s/op, sipp %.0f%%+%.0f%%, other %.0f%%, UDP drops %d (proxy %d): %s",
		s.Target, s.Workload, s.Rate, s.Succeeded, s.Planned, s.Achieved(), fmtMS(s.P50, s.HaveRTT), fmtMS(s.P99, s.HaveRTT),
		s.pct(s.ProxyCPU), fmtDur(s.CPUPerOp()), s.pct(s.UACCPU), s.pct(s.UASCPU), s.pct(s.OtherCPU), s.UDPDrops, s.ProxyDrops, verdict)
}
