package main

// The soak: one call rate held for a long time against one Switchboard,
// with the response times, the failures, the memory and the CPU of every
// minute, and the garbage collector's cycles (GODEBUG=gctrace=1) laid
// against the slowest calls, to tell whether the collector is what puts
// requests in a queue.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// soakRun is what a soak measured.
type soakRun struct {
	Target  string
	Rate    int
	Dur     time.Duration
	Total   step // the whole run, as a step of the series measures one
	Minutes []soakMinute
	// GCs are the collector's cycles during the calls.
	GCs []gcCycle
	// Tail is the slowest 1 % of the calls (INVITE to 200 above the
	// run's p99), SlowInGC the share of them whose wait overlapped a
	// collector cycle, AllInGC the same share over every call, and
	// GCShare the share of the run's time a cycle was under way.
	Tail              int
	SlowInGC, AllInGC float64
	GCShare           float64
}

// soakMinute is one minute of a soak.
type soakMinute struct {
	Minute   int // from 1
	Answered int // 200s to INVITEs measured in the minute
	Failed   int // calls the caller counted failed in the minute
	Retrans  int
	P50, P99 float64
	Max      float64
	RSS, PSS int64
	CPU      time.Duration // the proxy's, during the minute
	GCs      int
	// HeapLive is the most the collector found live after a cycle of
	// the minute, MiB.
	HeapLive int
}

// gcCycle is one line of GODEBUG=gctrace=1: when the cycle started
// (since the caller started, in ms), how long it ran on the wall clock
// (its three phases), and the heap it left live (MiB).
type gcCycle struct {
	At, Clock float64
	Live      int
}

// gctraceLine matches "gc 12 @3.456s 2%: 0.018+1.2+0.003 ms clock, ...,
// 40->41->20 MB, ...".
var gctraceLine = regexp.MustCompile(`^gc \d+ @([\d.]+)s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock, .* (\d+)->(\d+)->(\d+) MB`)

// readGCTrace reads the collector's cycles from a Switchboard's log,
// their times shifted by offset (ms) from the process's start to the
// caller's.
func readGCTrace(path string, offset float64) ([]gcCycle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []gcCycle
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := gctraceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[1], 64)
		var clock float64
		for _, s := range m[2:5] {
			v, _ := strconv.ParseFloat(s, 64)
			clock += v
		}
		live, _ := strconv.Atoi(m[7])
		out = append(out, gcCycle{At: at*1000 - offset, Clock: clock, Live: live})
	}
	return out, sc.Err()
}

// playSoak offers o.SoakRate calls per second to p for o.SoakDur, in one
// caller's run, and samples the proxy every minute.
func playSoak(ctx context.Context, o options, p *proxy, work, cpus string) (*soakRun, error) {
	run := &soakRun{Target: p.Name, Rate: o.SoakRate, Dur: o.SoakDur}
	dir := filepath.Join(work, fmt.Sprintf("soak-%d", o.SoakRate))
	n := o.SoakRate * int(o.SoakDur/time.Second)
	timeout := o.SoakDur + 30*time.Second
	run.Total = step{Target: p.Name, Workload: "soak", Rate: o.SoakRate, Planned: n, Load: loadAvg()}
	uasPort, err := freeUDPPort(calleeIP)
	if err != nil {
		return nil, err
	}
	user := "callee-soak"
	if err := registerCallee(ctx, o, p, user, uasPort, filepath.Join(dir, "register"), cpus); err != nil {
		return nil, err
	}
	m, err := startMeter(p)
	if err != nil {
		return nil, err
	}
	uas, err := startSipp(ctx, "uas", dir, cpus,
		"-sf", scenario(o, "bench_uas.xml"), "-i", calleeIP, "-p", strconv.Itoa(uasPort), "-m", strconv.Itoa(n),
		"-recv_timeout", ms(recvTimeout), "-timeout", secs(timeout+10*time.Second))
	if err != nil {
		m.finish(&run.Total)
		return nil, err
	}
	if err := waitUDPBound(ctx, calleeIP, uasPort, uas.done, 10*time.Second); err != nil {
		uas.stop()
		m.finish(&run.Total)
		return nil, fmt.Errorf("callee: %w", err)
	}
	uac, err := startCaller(ctx, o, p, "uac", dir, cpus, "bench_uac.xml", o.SoakRate, n, timeout, "-s", user)
	if err != nil {
		uas.stop()
		m.finish(&run.Total)
		return nil, err
	}
	samples := sampleMinutes(p, uac.done)
	uac.wait(timeout + 10*time.Second)
	uas.wait(3 * time.Second)
	minutes := samples()
	run.Total.Wall = uac.wall
	run.Total.UACCPU, run.Total.UASCPU = uac.cpu(), uas.cpu()
	m.finish(&run.Total)
	c, err := uac.stats()
	if err != nil {
		return nil, fmt.Errorf("caller: %v: %s", err, uac.describe())
	}
	cs, err := uas.stats()
	if err != nil {
		return nil, fmt.Errorf("callee: %v: %s", err, uas.describe())
	}
	run.Total.count(c, cs)
	run.Total.ViaProxy = cs.int("SuccessfulCall")
	fillRTT(&run.Total, dir, "bench_uac")
	run.Total.judge()

	rs, err := rtts(dir, "bench_uac")
	if err != nil {
		return nil, err
	}
	failed, err := failuresByMinute(filepath.Join(dir, "uac_stat.csv"))
	if err != nil {
		return nil, err
	}
	offset := float64(uac.start.Sub(p.started).Milliseconds())
	if run.GCs, err = readGCTrace(filepath.Join(p.dir, "proxy.log"), offset); err != nil {
		return nil, err
	}
	run.GCs = slices.DeleteFunc(run.GCs, func(g gcCycle) bool { return g.At < 0 })
	run.Minutes = soakMinutes(rs[1], failed, run.GCs, minutes, o.SoakDur)
	run.tail(rs[1])
	return run, nil
}

// minuteSample is the proxy's memory and CPU at the end of a minute.
type minuteSample struct {
	RSS, PSS int64
	CPU      time.Duration
}

// sampleMinutes samples p at the end of every minute until done is
// closed; the function it returns stops it and returns the samples.
func sampleMinutes(p *proxy, done <-chan struct{}) func() []minuteSample {
	var (
		mu  sync.Mutex
		out []minuteSample
	)
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-done:
				return
			case <-t.C:
				s := minuteSample{PSS: p.memory()}
				s.RSS, _ = kbField(fmt.Sprintf("/proc/%d/status", p.pids[0]), "VmRSS")
				s.CPU, _ = p.cpu()
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
			}
		}
	}()
	return func() []minuteSample {
		close(stop)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// failuresByMinute reads the caller's -trace_stat file (a line a second)
// and sums its failed calls and retransmissions by minute (index 0 is
// the first minute).
func failuresByMinute(path string) (map[int][2]int, error) {
	rows, err := readStatRows(path)
	if err != nil {
		return nil, err
	}
	head := rows[0]
	out := map[int][2]int{}
	for _, row := range rows[1:] {
		col := func(name string) string {
			if i := slices.Index(head, name); i >= 0 && i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		elapsed, err := parseClock(col("ElapsedTime(C)"))
		if err != nil {
			continue
		}
		minute := int(elapsed / time.Minute)
		failed, _ := strconv.Atoi(col("FailedCall(P)"))
		retrans, _ := strconv.Atoi(col("Retransmissions(P)"))
		v := out[minute]
		out[minute] = [2]int{v[0] + failed, v[1] + retrans}
	}
	return out, nil
}

// parseClock reads SIPp's "hh:mm:ss" (with or without ":micros").
func parseClock(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return 0, fmt.Errorf("%q is not hh:mm:ss", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return 0, fmt.Errorf("%q is not hh:mm:ss", s)
		}
		d += time.Duration(v) * unit
	}
	return d, nil
}

// soakMinutes puts the response times, failures, collector cycles and
// samples of a soak together, minute by minute.
// What comes after the last whole minute (the last calls' answers)
// counts in the last minute.
func soakMinutes(rs []rtt, failed map[int][2]int, gcs []gcCycle, samples []minuteSample, dur time.Duration) []soakMinute {
	last := max(0, int(dur/time.Minute)-1)
	minute := func(ms float64) int { return min(last, int(ms/60000)) }
	byMinute := map[int][]float64{}
	for _, r := range rs {
		i := minute(r.at)
		byMinute[i] = append(byMinute[i], r.ms)
	}
	for i, v := range failed {
		if i > last {
			f := failed[last]
			failed[last] = [2]int{f[0] + v[0], f[1] + v[1]}
			delete(failed, i)
		}
	}
	var out []soakMinute
	var cpu0 time.Duration
	for i := 0; i <= last; i++ {
		m := soakMinute{Minute: i + 1, Failed: failed[i][0], Retrans: failed[i][1]}
		if v := byMinute[i]; len(v) > 0 {
			m.Answered = len(v)
			m.P50, _ = percentile(v, 50)
			m.P99, _ = percentile(v, 99)
			m.Max = slices.Max(v)
		}
		if i < len(samples) {
			s := samples[i]
			m.RSS, m.PSS = s.RSS, s.PSS
			if i > 0 {
				m.CPU = s.CPU - cpu0
			}
			cpu0 = s.CPU
		}
		for _, g := range gcs {
			if minute(g.At) == i {
				m.GCs++
				m.HeapLive = max(m.HeapLive, g.Live)
			}
		}
		out = append(out, m)
	}
	return out
}

// tail lays the slowest calls against the collector's cycles: a call's
// wait is from its INVITE (the 200's time less the response time) to its
// 200.
func (run *soakRun) tail(rs []rtt) {
	if len(rs) == 0 {
		return
	}
	p99, _ := percentile(durations(rs), 99)
	inGC := func(r rtt) bool {
		from, to := r.at-r.ms, r.at
		for _, g := range run.GCs {
			if g.At <= to && g.At+g.Clock >= from {
				return true
			}
		}
		return false
	}
	var slow, slowIn, allIn int
	for _, r := range rs {
		in := inGC(r)
		if in {
			allIn++
		}
		if r.ms > p99 {
			slow++
			if in {
				slowIn++
			}
		}
	}
	run.Tail = slow
	run.AllInGC = float64(allIn) / float64(len(rs))
	if slow > 0 {
		run.SlowInGC = float64(slowIn) / float64(slow)
	}
	var gcTime float64
	for _, g := range run.GCs {
		gcTime += g.Clock
	}
	run.GCShare = gcTime / run.Dur.Seconds() / 1000
}

// soakMarkdown renders the soaks of a report.
func soakMarkdown(rep *report) string {
	var b strings.Builder
	b.WriteString(runLine(rep) + "\n")
	for _, r := range rep.Runs {
		s := r.Soak
		fmt.Fprintf(&b, "\n### Soak, setup %s: %s\n\n", r.Opts.Setup, pinning(r.Opts))
		if s == nil {
			fmt.Fprintf(&b, "The soak did not run: %s.\n", r.Partial)
			continue
		}
		t := &s.Total
		verdict := "passed"
		if !t.Pass {
			verdict = "failed: " + t.Why
		}
		fmt.Fprintf(&b, "%s, %d calls/s for %s (%d calls): %d succeeded, %d failed, %d retransmissions; p50 %s, p99 %s; CPU per call %s; other CPU %.0f %% of a core. The run %s.\n\n",
			s.Target, s.Rate, s.Dur, t.Planned, t.Succeeded, t.Failed, t.Retrans,
			fmtMS(t.P50, t.HaveRTT), fmtMS(t.P99, t.HaveRTT), opCPU(t), t.pct(t.OtherCPU), verdict)
		b.WriteString("| minute | 200s | failed | retrans | p50 | p99 | max | RSS | PSS | proxy CPU | GC cycles | live heap after GC |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, m := range s.Minutes {
			cpu := "n/a"
			if m.CPU > 0 {
				cpu = fmt.Sprintf("%.0f%%", 100*m.CPU.Seconds()/60)
			}
			fmt.Fprintf(&b, "| %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %d | %d MiB |\n",
				m.Minute, m.Answered, m.Failed, m.Retrans, fmtMS(m.P50, m.Answered > 0), fmtMS(m.P99, m.Answered > 0),
				fmtMS(m.Max, m.Answered > 0), mib(m.RSS), mib(m.PSS), cpu, m.GCs, m.HeapLive)
		}
		fmt.Fprintf(&b, "\nThe collector (GODEBUG=gctrace=1) ran %d cycles during the calls, under way %.1f %% of the time (wall clock, its three phases). "+
			"Of the %d slowest calls (INVITE to 200 above the run's p99), %.0f %% waited while a cycle was under way; of all calls, %.0f %%.\n",
			len(s.GCs), 100*s.GCShare, s.Tail, 100*s.SlowInGC, 100*s.AllInGC)
	}
	return b.String()
}
