package main

// The report: a summary with the ratio Switchboard/Kamailio, then every
// step, as markdown tables (readable in a terminal too).

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

// machine describes where the run ran.
type machine struct {
	CPUs   int
	Model  string
	Memory string
	Kernel string
	Sipp   string
	Kam    string
	Go     string
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Model: "?", Memory: "?", Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if n, err := kbField("/proc/meminfo", "MemTotal"); err == nil {
		m.Memory = fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.Sipp = firstLine(commandOutput("sipp", "-v"), "SIPp")
	m.Kam = firstLine(commandOutput("kamailio", "-v"), "version:")
	return m
}

// summary is one target's figures.
type summary struct {
	Target string
	// Calls and Regs are the highest rates passed (0: none), with the
	// step at that rate and the step that ended the series.
	Calls, Regs         int
	CallsTop, RegsTop   bool // every rate of the series passed
	CallStep, RegStep   *step
	CallLimit, RegLimit string
	PeakPSS             int64
	// CallPassed and RegPassed are the steps that passed, by rate.
	CallPassed, RegPassed map[int]*step
}

// common returns the steps of a and b at the highest rate both passed.
func common(a, b map[int]*step) (*step, *step) {
	best := 0
	for rate := range a {
		if b[rate] != nil && rate > best {
			best = rate
		}
	}
	return a[best], b[best]
}

func summarize(r *result) []summary {
	var out []summary
	for _, t := range r.Targets {
		s := summary{Target: t.Name}
		for _, w := range []string{workCalls, workRegistrations} {
			// A rate counts by its last try: a failure played again and
			// passed is a pass.
			var last []*step
			for i := range r.Steps {
				st := &r.Steps[i]
				if st.Target != t.Name || st.Workload != w {
					continue
				}
				s.PeakPSS = max(s.PeakPSS, st.ProxyPSS)
				if n := len(last); n > 0 && last[n-1].Rate == st.Rate {
					last[n-1] = st
				} else {
					last = append(last, st)
				}
			}
			var best, end *step
			all := true
			passed := map[int]*step{}
			for _, st := range last {
				if st.Pass {
					best = st
					passed[st.Rate] = st
				} else {
					all = false
					if end == nil {
						end = st
					}
				}
			}
			rates := r.Opts.CallRate
			if w == workRegistrations {
				rates = r.Opts.RegRate
			}
			top := all && best != nil && best.Rate == rates[len(rates)-1]
			lim := ""
			switch {
			case end != nil:
				lim = limitOf(*end, r.Opts)
			case top:
				lim = "not reached: every offered rate passed (" + limitOf(*best, r.Opts) + ")"
			}
			rate := 0
			if best != nil {
				rate = best.Rate
			}
			if w == workCalls {
				s.Calls, s.CallsTop, s.CallStep, s.CallLimit, s.CallPassed = rate, top, best, lim, passed
			} else {
				s.Regs, s.RegsTop, s.RegStep, s.RegLimit, s.RegPassed = rate, top, best, lim, passed
			}
		}
		out = append(out, s)
	}
	return out
}

// busy is the share of a core (percent) from which a process counts as
// the limit: with the garbage collector, the scheduler and the kernel's
// work on its sockets, a proxy is saturated before 100 %.
const busy = 80

// limitOf says what limited a step: sipp's CPU, the proxy's CPU, other
// processes, or the proxy itself (failures with CPU to spare).
func limitOf(s step, o options) string {
	uac, uas := s.pct(s.UACCPU), s.pct(s.UASCPU)
	proxy, other := s.pct(s.ProxyCPU), s.pct(s.OtherCPU)
	switch {
	case o.Pin && uac+uas >= busy:
		return fmt.Sprintf("sipp: its core at %.0f%% (caller %.0f%%, callee %.0f%%)", uac+uas, uac, uas)
	case uac >= busy || uas >= busy:
		return fmt.Sprintf("sipp: caller at %.0f%%, callee at %.0f%% of a core", uac, uas)
	case o.Pin && proxy >= busy:
		return fmt.Sprintf("proxy CPU: %.0f%% of its core", proxy)
	case !o.Pin && proxy >= busy*float64(runtime.NumCPU())-uac-uas:
		return fmt.Sprintf("CPU: proxy %.0f%%, sipp %.0f%%", proxy, uac+uas)
	case other >= 50:
		return fmt.Sprintf("other processes: %.0f%% of a core", other)
	case s.Pass:
		return fmt.Sprintf("proxy %.0f%%, sipp %.0f%% of a core", proxy, uac+uas)
	}
	if s.ProxyDrops > 0 {
		return fmt.Sprintf("the proxy, with CPU to spare (%.0f%%): %s; %d datagrams dropped at its full UDP receive buffer", proxy, s.Why, s.ProxyDrops)
	}
	return fmt.Sprintf("the proxy, with CPU to spare (%.0f%%): %s", proxy, s.Why)
}

// markdown renders the report: when and where it ran, how busy the
// machine was, then each setup: its targets, summary and steps.
func markdown(rep *report) string {
	var b strings.Builder
	b.WriteString(runLine(rep) + "\n")
	if missing := missingSetups(rep); missing != "" {
		fmt.Fprintf(&b, "\n**Partial run**: %s.\n", missing)
	}
	for _, r := range rep.Runs {
		fmt.Fprintf(&b, "\n### Setup %s: %s\n\n", r.Opts.Setup, pinning(r.Opts))
		if r.Partial != "" {
			fmt.Fprintf(&b, "**Partial**: this setup stopped before its end (%s); what follows is what it measured until then.\n\n", r.Partial)
		}
		b.WriteString(machineLoad(r) + "\n\n")
		targetsTable(&b, r)
		setupMarkdown(&b, r)
	}
	return b.String()
}

// missingSetups names the setups of the options that did not run, or
// stopped early; "" when every one ran to its end.
func missingSetups(rep *report) string {
	var out []string
	for _, su := range rep.Opts.Setups {
		switch r := rep.run(su.Name); {
		case r == nil:
			out = append(out, "setup "+su.Name+" did not run")
		case r.Partial != "":
			out = append(out, "setup "+su.Name+" stopped early")
		}
	}
	return strings.Join(out, "; ")
}

// run returns the result of the setup of that name, nil if it did not run.
func (rep *report) run(setup string) *result {
	for _, r := range rep.Runs {
		if r.Opts.Setup == setup {
			return r
		}
	}
	return nil
}

// machineLoad says how much CPU other processes took while the steps of
// r ran: on a shared machine that is the first thing to read.
func machineLoad(r *result) string {
	var other []float64
	for i := range r.Steps {
		other = append(other, r.Steps[i].pct(r.Steps[i].OtherCPU))
	}
	if len(other) == 0 {
		return "No step ran."
	}
	slices.Sort(other)
	med, top := other[len(other)/2], other[len(other)-1]
	verdict := "the machine was quiet"
	if med >= 10 || top >= 50 {
		verdict = "**the machine was shared**: other processes (other sessions' builds and tests) ran beside the benchmark, and a figure here is lower than on a quiet machine"
	}
	return fmt.Sprintf("Other processes took %.0f %% of a core on the median step and %.0f %% at most (the \"other CPU\" column): %s.", med, top, verdict)
}

// setupMarkdown renders one setup's options, proxies, summary and steps.
func setupMarkdown(b *strings.Builder, r *result) {
	o := r.Opts
	gc := "its config's own memory settings (examples/seed.toml and minimal.toml set no `server.memory_limit`: Go's default collector)"
	if o.MemoryLimit != "" {
		gc = "`server.memory_limit = \"" + o.MemoryLimit + "\"`"
	}
	if o.Linger != "" {
		gc += " and `server.linger = \"" + o.Linger + "\"` (not the default 5 s)"
	}
	fmt.Fprintf(b, "Calls: %s s per rate; registrations: %s s per rate; Kamailio's UDP workers: %s (%s per core, %s; its figure is its best), with %d MB of shared memory; Switchboard with %s; "+
		"both proxies ask for a UDP receive buffer of %s (Switchboard's default `server.udp_receive_buffer`, Kamailio's `-b`).\n\n",
		trimSecs(o.CallDur), trimSecs(o.RegDur), kamailioWorkers(r), joinInts(o.KamailioPerCore), plural(o.cores(), "core"), o.KamailioShm, gc, kib(config.DefaultUDPReceiveBuffer))
	b.WriteString("| proxy | what | registrations kept | UDP receive buffer (ss) |\n|---|---|---|--:|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Name, t.About, t.Bindings, kib(t.RcvBuf))
	}
	b.WriteString("\n")

	sums := summarize(r)
	kam := bestKamailio(sums)
	b.WriteString("| proxy | calls/s | CPU per call | p50 / p99 INVITE→200 | what limited calls | registrations/s | CPU per REGISTER | p50 / p99 | what limited registrations | peak PSS |\n")
	b.WriteString("|---|--:|--:|--:|---|--:|--:|--:|---|--:|\n")
	for _, s := range sums {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Target,
			figure(s.Calls, s.CallsTop), opCPU(s.CallStep), latency(s.CallStep), s.CallLimit,
			figure(s.Regs, s.RegsTop), opCPU(s.RegStep), latency(s.RegStep), s.RegLimit, mib(s.PeakPSS))
	}
	if kam != nil && len(sums) > 1 {
		fmt.Fprintf(b, "\nSwitchboard / Kamailio's best (%s; above 1 is more for rates, costlier for CPU and time):\n\n", kam.Target)
		b.WriteString("| proxy | calls/s | CPU per call | p99 INVITE→200 | registrations/s | CPU per REGISTER | p99 REGISTER→200 |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range sums {
			if strings.HasPrefix(s.Target, "kamailio") {
				continue
			}
			ca, ck := common(s.CallPassed, kam.CallPassed)
			ra, rk := common(s.RegPassed, kam.RegPassed)
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", s.Target,
				figureRatio(s.Calls, s.CallsTop, kam.Calls, kam.CallsTop), atRate(ca, ck, cpuPerOp), atRate(ca, ck, p99),
				figureRatio(s.Regs, s.RegsTop, kam.Regs, kam.RegsTop), atRate(ra, rk, cpuPerOp), atRate(ra, rk, p99))
		}
		b.WriteString("\nCPU per operation and p99 are compared at the same offered rate, the highest both proxies passed (in parentheses): " +
			"at its own highest rate a proxy runs closer to its limit, and its latency with it. The step tables below compare every rate.\n")
	}
	if len(o.LatencyRates) > 0 && o.LatencyRounds > 0 {
		latencyTables(b, r)
	}
	for _, w := range []string{workCalls, workRegistrations, workLatency} {
		title, try := strings.ToUpper(w[:1])+w[1:]+", rate by rate", "try"
		if w == workLatency {
			title, try = "The latency series, round by round", "round"
		}
		fmt.Fprintf(b, "\n%s:\n\n", title)
		b.WriteString("| offered/s | proxy | " + try + " | ok / planned | failed | retrans | unexpected | verified at callee | carried/s | p50 | p99 | proxy CPU | CPU per op | peak PSS | sipp CPU caller+callee | other CPU | UDP drops (proxy's) | load | result |\n")
		b.WriteString("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, s := range r.Steps {
			if s.Workload != w {
				continue
			}
			verified := "n/a"
			if w != workRegistrations {
				verified = fmt.Sprint(s.ViaProxy)
			}
			result := "pass"
			if !s.Pass {
				result = "fail: " + s.Why
			}
			fmt.Fprintf(b, "| %d | %s | %d | %d / %d | %d | %d | %d | %s | %.0f | %s | %s | %.0f%% | %s | %s | %.0f%% + %.0f%% | %.0f%% | %d (%d) | %s | %s |\n",
				s.Rate, s.Target, max(1, s.Try), s.Succeeded, s.Planned, s.Failed, s.Retrans, s.Unexpected, verified, s.Achieved(),
				fmtMS(s.P50, s.HaveRTT), fmtMS(s.P99, s.HaveRTT), s.pct(s.ProxyCPU), fmtDur(s.CPUPerOp()), mib(s.ProxyPSS),
				s.pct(s.UACCPU), s.pct(s.UASCPU), s.pct(s.OtherCPU), s.UDPDrops, s.ProxyDrops, s.Load, result)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(b, "- %s\n", n)
		}
	}
	for _, s := range r.Shares {
		sharesMarkdown(b, s)
	}
	if len(r.Profiles) > 0 {
		b.WriteString("\nProfiles written: " + strings.Join(r.Profiles, ", ") + "\n")
	}
}

// runLine says when, how and where the run ran, in a sentence, and the
// command that made it.
func runLine(rep *report) string {
	line := fmt.Sprintf("Run of %s (%s mode, %s), on %d × %s, %s of memory, Linux %s; %s; %s; %s.",
		rep.Started.UTC().Format("2006-01-02 15:04 UTC"), rep.Opts.Mode, rep.Elapsed.Round(time.Second), rep.Machine.CPUs, rep.Machine.Model,
		rep.Machine.Memory, rep.Machine.Kernel, rep.Machine.Go, rep.Machine.Sipp, rep.Machine.Kam)
	if len(rep.Opts.Args) > 0 {
		line += " Command: `go run ./examples/bench " + strings.Join(rep.Opts.Args, " ") + "`."
	}
	return line
}

// pinning says where the proxies and sipp ran.
func pinning(o options) string {
	if o.Pin {
		return fmt.Sprintf("the proxy pinned to CPU %s, every sipp to CPU %s (taskset)", o.ProxyCPUs, o.SippCPUs)
	}
	return "nothing pinned: the proxy and sipp share every core"
}

func cpuPerOp(s *step) float64 { return float64(s.CPUPerOp()) }
func p99(s *step) float64      { return s.P99 }
func p50(s *step) float64      { return s.P50 }
func proxyPct(s *step) float64 { return s.pct(s.ProxyCPU) }

// latencyTables renders the latency series: every proxy's rounds at each
// rate with their medians, then the ratio of the median p99s.
func latencyTables(b *strings.Builder, r *result) {
	o := r.Opts
	rates := make([]string, len(o.LatencyRates))
	for i, rate := range o.LatencyRates {
		rates[i] = fmt.Sprintf("%d/s", rate)
	}
	rounds := fmt.Sprintf("%d rounds", o.LatencyRounds)
	if o.LatencyRounds == 1 {
		rounds = "1 round"
	}
	fmt.Fprintf(b, "\nTail latency at equal load: the latency series played %s against every proxy in %s of %s s "+
		"(each round every proxy in turn, the order rotated from one round to the next), after the series above. "+
		"Medians of the rounds; a round marked ✗ failed (the step table at the end says why):\n\n",
		strings.Join(rates, " and "), rounds, trimSecs(o.LatencyDur))
	b.WriteString("| offered/s | proxy | p99 of each round | median p99 | median p50 | median failed | median CPU per call | median proxy CPU | rounds passed |\n")
	b.WriteString("|--:|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, rate := range o.LatencyRates {
		for _, t := range r.Targets {
			rounds := latencyRounds(r, t.Name, rate)
			if len(rounds) == 0 {
				continue
			}
			var each []string
			passed := 0
			for _, st := range rounds {
				v := fmtMS(st.P99, st.HaveRTT)
				if st.Pass {
					passed++
				} else {
					v += " ✗"
				}
				each = append(each, v)
			}
			fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %.1f %% | %s | %.0f%% | %d / %d |\n", rate, t.Name, strings.Join(each, ", "),
				fmtMS(median(rounds, p99), haveRTT(rounds)), fmtMS(median(rounds, p50), haveRTT(rounds)), 100*median(rounds, failShare),
				fmtDur(time.Duration(median(rounds, cpuPerOp))), median(rounds, proxyPct), passed, len(rounds))
		}
	}
	var kamailio string
	for _, t := range r.Targets {
		if t.Kamailio {
			kamailio = t.Name
		}
	}
	if kamailio == "" || len(r.Targets) < 2 {
		return
	}
	b.WriteString("\nSwitchboard / Kamailio, median p99 INVITE→200 at equal load (below 1 is a lower tail latency; " +
		"a ratio where Switchboard failed a larger share of the calls than Kamailio is no lower tail latency: " +
		"its p99 is that of the calls it carried):\n\n")
	b.WriteString("| proxy | " + strings.Join(rates, " | ") + " |\n|---|" + strings.Repeat("--:|", len(rates)) + "\n")
	for _, t := range r.Targets {
		if t.Kamailio {
			continue
		}
		fmt.Fprintf(b, "| %s |", t.Name)
		for _, rate := range o.LatencyRates {
			sb, kam := latencyRounds(r, t.Name, rate), latencyRounds(r, kamailio, rate)
			v := "n/a"
			if haveRTT(sb) && haveRTT(kam) {
				v = ratio(median(sb, p99), median(kam, p99))
			}
			fmt.Fprintf(b, " %s |", v)
		}
		b.WriteString("\n")
	}
}

// latencyRounds returns the latency steps of target at rate, round by
// round.
func latencyRounds(r *result, target string, rate int) []*step {
	var out []*step
	for i := range r.Steps {
		if st := &r.Steps[i]; st.Workload == workLatency && st.Target == target && st.Rate == rate {
			out = append(out, st)
		}
	}
	return out
}

// haveRTT reports whether every step has response times.
func haveRTT(steps []*step) bool {
	for _, st := range steps {
		if !st.HaveRTT {
			return false
		}
	}
	return len(steps) > 0
}

// median is the median of f over steps (the mean of the middle two for
// an even count), 0 for none.
func median(steps []*step, f func(*step) float64) float64 {
	if len(steps) == 0 {
		return 0
	}
	v := make([]float64, len(steps))
	for i, st := range steps {
		v[i] = f(st)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// atRate is stepRatio with the rate the two steps were played at.
func atRate(a, b *step, f func(*step) float64) string {
	r := stepRatio(a, b, f)
	if a == nil || b == nil || r == "n/a" {
		return r
	}
	return fmt.Sprintf("%s (%d/s)", r, a.Rate)
}

func stepRatio(a, b *step, f func(*step) float64) string {
	if a == nil || b == nil {
		return "n/a"
	}
	return ratio(f(a), f(b))
}

// figureRatio is ratio for two figures, either of which may be a lower
// bound (every offered rate passed): then the ratio is a bound too, or
// unknown when both are.
func figureRatio(a int, aTop bool, b int, bTop bool) string {
	r := ratio(float64(a), float64(b))
	switch {
	case r == "n/a" || aTop == bTop && !aTop:
		return r
	case aTop && bTop:
		return "n/a (both ≥)"
	case aTop:
		return "≥ " + r
	}
	return "≤ " + r
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func figure(rate int, top bool) string {
	switch {
	case rate == 0:
		return "none passed"
	case top:
		return fmt.Sprintf("≥ %d", rate)
	}
	return fmt.Sprint(rate)
}

func opCPU(s *step) string {
	if s == nil {
		return "n/a"
	}
	return fmtDur(s.CPUPerOp())
}

func latency(s *step) string {
	if s == nil {
		return "n/a"
	}
	return fmtMS(s.P50, s.HaveRTT) + " / " + fmtMS(s.P99, s.HaveRTT)
}

func fmtMS(v float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%g ms", v)
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func mib(n int64) string {
	if n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func trimSecs(d time.Duration) string { return fmt.Sprintf("%g", d.Seconds()) }

func commandOutput(name string, args ...string) string {
	out, _ := execOutput(name, args...)
	return out
}

func firstLine(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	return prefix + " ?"
}

// docsMarkers returns the comments that mark a section of
// docs/benchmarks.md that -docs replaces: "results" for the series and
// the latency series, "order" for the order check.
func docsMarkers(section string) (begin, end string) {
	return "<!-- bench:" + section + ":begin -->", "<!-- bench:" + section + ":end -->"
}

// updateDocs replaces the text between the markers of section in the file
// at path with text.
func updateDocs(path, section, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(data)
	begin, end := docsMarkers(section)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s markers to put the %s between", path, begin, end, section)
	}
	doc = doc[:i+len(begin)] + "\n\n" + text + "\n" + doc[j:]
	return os.WriteFile(path, []byte(doc), 0o644)
}

// bestKamailio returns the summary of the Kamailio that carried the most
// calls (then registrations), nil if none ran.
func bestKamailio(sums []summary) *summary {
	var best *summary
	for i := range sums {
		s := &sums[i]
		if !strings.HasPrefix(s.Target, "kamailio") {
			continue
		}
		if best == nil || s.Calls > best.Calls || s.Calls == best.Calls && s.Regs > best.Regs {
			best = s
		}
	}
	return best
}

// kamailioWorkers lists the numbers of workers the Kamailios of r ran with.
func kamailioWorkers(r *result) string {
	var n []int
	for _, t := range r.Targets {
		if t.Kamailio {
			n = append(n, t.Children)
		}
	}
	if len(n) == 0 {
		return "no"
	}
	return joinInts(n)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func kib(n int64) string {
	switch {
	case n <= 0:
		return "n/a"
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// plural is n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
