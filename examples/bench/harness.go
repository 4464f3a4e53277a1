package main

// The run: every proxy started once, then each offered rate of the calls
// series and then of the registrations series played against every proxy
// in turn, alternately, until a proxy fails a rate; then the latency
// series: the same call rates for every proxy, in rounds.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The loopback addresses of the run: the proxies listen on proxyIP, the
// callers and the registering phones are on callerIP, the callees on
// calleeIP.
const (
	proxyIP  = "127.0.0.1"
	callerIP = "127.0.0.2"
	calleeIP = "127.0.0.3"
)

// Workloads.
const (
	workCalls         = "calls"
	workRegistrations = "registrations"
	// workLatency is calls too, played in rounds at the same rates for
	// every proxy, to compare tail latency at equal load.
	workLatency = "latency"
	// workOrder is calls too, whose caller requires the 180 before the
	// 200: the order check.
	workOrder = "order"
)

// quietBusy is what a quiet machine means: under half a core busy over a
// second (the proxies idle).
const quietBusy = 500 * time.Millisecond

// proxiesSettled is what idle proxies take: under 5 % of a core over a
// second, all of them together.
const proxiesSettled = 50 * time.Millisecond

// waitQuiet waits until the machine was nearly idle for a second and the
// proxies have settled, or limit. Unless limit is 0 it waits a second at
// least. The proxies all share one core: the one measured last is still
// ending the transactions of its step (they linger 5 s after their final
// response, in Kamailio as in Switchboard) when the next step starts, and
// without this wait that work falls on the next proxy's measurement.
func waitQuiet(ctx context.Context, limit time.Duration, proxies []*proxy) error {
	if limit <= 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		busy0, _, err := machineCPU()
		if err != nil {
			return nil
		}
		proxy0 := proxiesCPU(proxies)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		busy1, _, _ := machineCPU()
		settled := proxiesCPU(proxies)-proxy0 < proxiesSettled
		if busy1-busy0 < quietBusy && settled || time.Now().After(deadline) {
			return nil
		}
	}
}

// proxiesCPU is the CPU time the proxies' processes have used so far.
func proxiesCPU(proxies []*proxy) time.Duration {
	var sum time.Duration
	for _, p := range proxies {
		for _, pid := range p.pids {
			if d, err := procCPU(pid); err == nil {
				sum += d
			}
		}
	}
	return sum
}

// recvTimeout is sipp's -recv_timeout: a call that waits longer for a
// message fails (and so stops by itself).
const recvTimeout = 5 * time.Second

// options say what a run measures.
type options struct {
	Mode     string // "smoke", "full" or "order" (the order check alone)
	Root     string // the repository
	Targets  []string
	CallRate []int
	RegRate  []int
	CallDur  time.Duration
	RegDur   time.Duration
	// LatencyRates are the call rates of the latency series, played
	// LatencyRounds times against every proxy for LatencyDur each: one
	// step's p99 hangs on whether a garbage collection or a burst of
	// other processes fell into it, the median of rounds less so.
	LatencyRates  []int
	LatencyRounds int
	LatencyDur    time.Duration
	// OrderTargets are the proxies of the order check, played after the
	// rest (alone in "order" mode): OrderRate calls per second for
	// OrderDur, each callee answering 180 and 200 back to back, each
	// caller requiring the 180 first. OrderDur 0 leaves it out.
	OrderTargets []string
	OrderRate    int
	OrderDur     time.Duration
	// Setups are the ways the run places the proxies and sipp on the
	// CPUs, measured one after the other: pinned and shared.
	Setups []setup
	// Setup and Pin are the setup being measured: Pin pins the proxies to
	// ProxyCPUs and sipp to SippCPUs (taskset).
	Setup     string
	Pin       bool
	ProxyCPUs string
	SippCPUs  string
	// KamailioPerCore are Kamailio's numbers of UDP workers (-n) per core
	// it may use: Kamailio runs once with each, and its figure is its
	// best. KamailioShm is its shared memory in MB (-m): its transactions
	// and bindings live there, and at 256 MB a burst of failed calls
	// (their transactions kept for fr_timer) exhausts it at 1600 calls/s.
	KamailioPerCore []int
	KamailioShm     int
	// MemoryLimit is Switchboard's server.memory_limit, "" for the
	// config's own (examples/seed.toml sets none).
	MemoryLimit string
	// Linger is Switchboard's server.linger, "" for the config's own (the
	// default, 5 s): how long its completed transactions keep their
	// messages, for the experiment in docs/benchmarks.md.
	Linger string
	// PprofDir, when set, receives CPU profiles of the Switchboard targets
	// taken during the calls at PprofRate and the REGISTERs at
	// PprofRegRate (0: none), and heap profiles at the end.
	PprofDir     string
	PprofRate    int
	PprofRegRate int
	// Retries is how many times a rate that failed is played again
	// before the proxy's series ends: a failure must repeat to count, so
	// that a burst of load from other processes does not end a series.
	// A failure on a quiet machine is played again once at most; Retries
	// more than 1 are for failures while other processes were busy.
	Retries int
	// QuietWait and QuietWaitRetry bound the wait for a quiet machine
	// before a rate and before a rate played again (0: no wait).
	QuietWait      time.Duration
	QuietWaitRetry time.Duration
	// Args are the command line's arguments, for the report to say how
	// the run was made.
	Args []string
	// SoakRate and SoakDur are the soak's ("soak" mode): one caller's
	// run of SoakRate calls per second for SoakDur against each target,
	// sampled every minute.
	SoakRate int
	SoakDur  time.Duration
	// GCTrace runs every Switchboard with GODEBUG=gctrace=1: its
	// collector's cycles go to its log.
	GCTrace bool
	// Keep keeps the work directory (logs, sipp traces).
	Keep bool
	// Log receives progress lines.
	Log io.Writer
}

// setup is a way to place the proxies and sipp on the machine's CPUs.
type setup struct {
	Name string // pinned or shared
	Pin  bool
}

// The setups: pinned gives the proxy one core and sipp the other
// (taskset); shared pins nothing, as a host running both would.
var (
	pinned = setup{Name: "pinned", Pin: true}
	shared = setup{Name: "shared"}
)

// defaultSetups are both setups, or shared alone on a single CPU.
func defaultSetups() []setup {
	if runtime.NumCPU() < 2 {
		return []setup{shared}
	}
	return []setup{pinned, shared}
}

// smokeOptions and fullOptions are the two modes.
func smokeOptions() options {
	return options{
		Mode:            "smoke",
		Targets:         []string{"sb-seed", "sb-seed-memory", "kamailio"},
		CallRate:        []int{20},
		RegRate:         []int{50},
		CallDur:         3 * time.Second,
		RegDur:          2 * time.Second,
		LatencyRates:    []int{20},
		LatencyRounds:   1,
		LatencyDur:      2 * time.Second,
		OrderTargets:    []string{"sb-seed", "kamailio"},
		OrderRate:       100,
		OrderDur:        2 * time.Second,
		Setups:          defaultSetups(),
		ProxyCPUs:       "1",
		SippCPUs:        "0",
		KamailioPerCore: []int{1},
		KamailioShm:     1024,
		Retries:         1,
		QuietWaitRetry:  5 * time.Second,
	}
}

func fullOptions() options {
	o := smokeOptions()
	o.Mode = "full"
	o.Targets = []string{"sb-seed", "sb-seed-memory", "sb-minimal", "kamailio"}
	o.CallRate = []int{250, 500, 1000, 1500, 2000, 2500, 3000, 4000}
	o.RegRate = []int{1000, 2000, 4000, 8000, 12000, 16000}
	o.CallDur = 10 * time.Second
	o.RegDur = 10 * time.Second
	o.LatencyRates = []int{1000, 2000}
	o.LatencyRounds = 3
	o.LatencyDur = 15 * time.Second
	o.OrderRate, o.OrderDur = 1000, 20*time.Second
	o.KamailioPerCore = []int{1, 2, 4}
	o.PprofRate = 1000
	o.Retries = 2
	o.QuietWait, o.QuietWaitRetry = 10*time.Second, 30*time.Second
	return o
}

// soakOptions is the soak: sb-seed at 1,500 calls per second for 30
// minutes, in the shared setup.
func soakOptions() options {
	o := fullOptions()
	o.Mode = "soak"
	o.Targets = []string{"sb-seed"}
	o.Setups = []setup{shared}
	o.SoakRate, o.SoakDur = 1500, 30*time.Minute
	o.GCTrace = true
	return o
}

// orderOptions is the order check alone, as the full run plays it,
// against its proxies only.
func orderOptions() options {
	o := fullOptions()
	o.Mode = "order"
	o.Targets = o.OrderTargets
	o.KamailioPerCore = []int{1}
	return o
}

// report is everything a run measured: a result for each setup.
type report struct {
	Opts    options
	Machine machine
	Started time.Time
	Elapsed time.Duration
	Runs    []*result
}

// result is everything measured in one setup.
type result struct {
	Opts    options // Setup and Pin say which
	Machine machine
	Started time.Time
	Elapsed time.Duration
	Targets []target
	Steps   []step
	// Partial says why the setup's run stopped before its end ("" when it
	// did not): what was measured is still reported.
	Partial string
	// Notes are things the reader must know (a target left out, a proxy
	// that died).
	Notes []string
	// Profiles are the pprof files written.
	Profiles []string
	// Shares are the owners of the CPU profiles' time (see profileShares).
	Shares []profileSet
	// Soak is what the soak measured ("soak" mode).
	Soak *soakRun
}

// run measures every target of o in each of its setups and returns what
// it measured. An error means the harness itself could not run (a tool
// missing, a proxy that did not start); failed steps are results, not
// errors, and a run stopped by ctx reports what it measured so far.
func run(ctx context.Context, o options) (*report, error) {
	rep := &report{Opts: o, Machine: describeMachine(), Started: time.Now()}
	if _, err := exec.LookPath("sipp"); err != nil {
		return nil, errors.New("sipp is not installed: the harness needs it (Debian: apt-get install sip-tester)")
	}
	var ts []target
	var notes []string
	for _, name := range o.Targets {
		t, ok := findTarget(name)
		if !ok {
			return nil, fmt.Errorf("unknown target %q (known: sb-seed, sb-seed-memory, sb-minimal, sb-bolt, kamailio)", name)
		}
		if t.Kamailio {
			if _, err := exec.LookPath("kamailio"); err != nil {
				if os.Getenv("SWITCHBOARD_BENCH_OPTIONAL") == "1" {
					notes = append(notes, "kamailio is not installed: left out (SWITCHBOARD_BENCH_OPTIONAL=1)")
					continue
				}
				return nil, errors.New("kamailio is not installed: the harness compares Switchboard with it " +
					"(Debian: apt-get install kamailio, or make test-deps); set SWITCHBOARD_BENCH_OPTIONAL=1 to leave it out")
			}
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, errors.New("no target to measure")
	}
	if len(o.Setups) == 0 {
		return nil, errors.New("no setup to measure in")
	}
	for _, su := range o.Setups {
		if _, err := exec.LookPath("taskset"); su.Pin && err != nil {
			return nil, errors.New("taskset is not installed (Debian: util-linux): run with -setups shared")
		}
	}

	work, bin, cleanup, err := workDir(ctx, o, "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	for _, su := range o.Setups {
		if ctx.Err() != nil {
			break
		}
		so := o
		so.Setup, so.Pin = su.Name, su.Pin
		res, err := runSetup(ctx, so, ts, bin, filepath.Join(work, su.Name))
		if err != nil {
			return nil, err
		}
		res.Notes = append(append([]string(nil), notes...), res.Notes...)
		rep.Runs = append(rep.Runs, res)
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// workDir makes a work directory for a run, which cleanup removes unless
// o.Keep, and builds Switchboard into it as bin.
func workDir(ctx context.Context, o options, prefix string) (work, bin string, cleanup func(), err error) {
	if work, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(work) }
	if o.Keep {
		o.logf("work directory: %s", work)
		cleanup = func() {}
	}
	bin = filepath.Join(work, "switchboard")
	o.logf("building switchboard (without -race)...")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/switchboard")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("go build -o %s ./cmd/switchboard: %v\n%s", bin, err, out)
	}
	return work, bin, cleanup, nil
}

// cores returns how many cores the proxy may use in o's setup: those of
// o.ProxyCPUs when pinned, every one otherwise.
func (o options) cores() int {
	if !o.Pin {
		return runtime.NumCPU()
	}
	return cpuCount(o.ProxyCPUs)
}

// cpuCount counts the CPUs of a taskset list such as "1", "0-3" or "1,3".
func cpuCount(list string) int {
	n := 0
	for _, f := range splitList(list) {
		lo, hi, ok := strings.Cut(f, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if ok && err1 == nil && err2 == nil && b >= a {
			n += b - a + 1
		} else {
			n++
		}
	}
	return max(n, 1)
}

// runSetup starts every target, Kamailio once per number of workers, in
// o's setup, plays the series, the latency series and the order check
// against them, and stops them.
func runSetup(ctx context.Context, o options, base []target, bin, work string) (*result, error) {
	var ts []target
	for _, t := range base {
		ts = append(ts, withChildren(t, o.KamailioPerCore, o.cores())...)
	}
	res := &result{Opts: o, Machine: describeMachine(), Started: time.Now(), Targets: ts}
	proxyCPUs, sippCPUs := "", ""
	if o.Pin {
		proxyCPUs, sippCPUs = o.ProxyCPUs, o.SippCPUs
	}
	o.logf("setup %s: %s", o.Setup, pinning(o))

	// Every proxy runs for the whole setup, so that they can take turns.
	var proxies []*proxy
	defer func() {
		for _, p := range proxies {
			_ = p.stop()
		}
	}()
	for _, t := range ts {
		dir := filepath.Join(work, t.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		p, err := startProxy(ctx, t, o, bin, dir, proxyCPUs)
		if err != nil {
			return nil, err
		}
		proxies = append(proxies, p)
		o.logf("%s: listening on udp %s (pids %v, receive buffer %s)", t.Name, p.Addr, p.pids, kib(p.RcvBuf))
		res.Targets[len(proxies)-1].RcvBuf = p.RcvBuf
	}

	err := error(nil)
	if o.Mode == "soak" {
		for _, p := range proxies {
			if err = waitQuiet(ctx, o.QuietWait, proxies); err != nil {
				break
			}
			o.logf("%s: soak at %d/s for %s", p.Name, o.SoakRate, o.SoakDur)
			if res.Soak, err = playSoak(ctx, o, p, filepath.Join(work, p.Name), sippCPUs); err != nil {
				break
			}
		}
	} else if o.Mode != "order" {
		err = playSeries(ctx, o, proxies, work, sippCPUs, res)
		if err == nil {
			err = playLatency(ctx, o, proxies, work, sippCPUs, res)
		}
	}
	if err == nil && o.Mode != "soak" {
		err = playOrder(ctx, o, proxies, work, sippCPUs, res)
	}
	if err != nil {
		res.Partial = err.Error()
		o.logf("setup %s stopped: %v", o.Setup, err)
	}
	if o.PprofDir != "" && err == nil {
		saveHeapProfiles(ctx, o, proxies, res)
	}
	for _, p := range proxies {
		if err := p.stop(); err != nil {
			res.Notes = append(res.Notes, err.Error())
		}
	}
	proxies = nil
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// playSeries plays the calls series, then the registrations series: each
// rate against every proxy in turn, a proxy leaving a series at its first
// rate that fails on every try.
func playSeries(ctx context.Context, o options, proxies []*proxy, work, sippCPUs string, res *result) error {
	series := []struct {
		work  string
		rates []int
		dur   time.Duration
	}{{workCalls, o.CallRate, o.CallDur}, {workRegistrations, o.RegRate, o.RegDur}}
	for _, s := range series {
		failed := map[string]bool{}
		for i, rate := range s.rates {
			// Alternate the order of the proxies from one rate to the next,
			// so that none always runs right after another.
			order := append([]*proxy(nil), proxies...)
			if i%2 == 1 {
				for a, b := 0, len(order)-1; a < b; a, b = a+1, b-1 {
					order[a], order[b] = order[b], order[a]
				}
			}
			for _, p := range order {
				if failed[p.Name] {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if !p.alive() {
					res.Notes = append(res.Notes, fmt.Sprintf("%s exited during the run: %v", p.Name, p.err))
					failed[p.Name] = true
					continue
				}
				for try := 1; try <= 1+o.Retries; try++ {
					// Wait (a little, or longer before a retry) for the
					// other processes of the machine to quieten down.
					wait := o.QuietWait
					if try > 1 {
						wait = o.QuietWaitRetry
					}
					if err := waitQuiet(ctx, wait, proxies); err != nil {
						return err
					}
					st, err := playStep(ctx, o, p, s.work, rate, s.dur, try, work, sippCPUs, res)
					if err != nil {
						return err
					}
					res.Steps = append(res.Steps, st)
					o.logf("%s", progressLine(st))
					if st.Pass {
						break
					}
					if try == 1+o.Retries || (try >= 2 && !st.disturbed()) {
						failed[p.Name] = true
						break
					}
				}
			}
		}
	}
	return nil
}

// playLatency plays every rate of o.LatencyRates against every proxy, in
// o.LatencyRounds rounds: in each round every proxy in turn, the order
// rotated from one round to the next. A rate is played whether or not a
// proxy passed it in the series, and a failed round is not played again:
// the rounds measure latency, they do not decide a figure.
func playLatency(ctx context.Context, o options, proxies []*proxy, work, sippCPUs string, res *result) error {
	// The registrations series ends with every proxy flooded past its
	// limit: the first step waits longer for them to be done with it.
	wait := o.QuietWaitRetry
	for _, rate := range o.LatencyRates {
		for round := 1; round <= o.LatencyRounds; round++ {
			shift := (round - 1) % len(proxies)
			order := append(append([]*proxy(nil), proxies[shift:]...), proxies[:shift]...)
			for _, p := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				if !p.alive() {
					continue // noted by the series already, or below
				}
				if err := waitQuiet(ctx, wait, proxies); err != nil {
					return err
				}
				wait = o.QuietWait
				st, err := playStep(ctx, o, p, workLatency, rate, o.LatencyDur, round, work, sippCPUs, res)
				if err != nil {
					return err
				}
				res.Steps = append(res.Steps, st)
				o.logf("%s", progressLine(st))
			}
		}
	}
	for _, p := range proxies {
		if !p.alive() {
			res.Notes = append(res.Notes, fmt.Sprintf("%s exited during the run: %v", p.Name, p.err))
		}
	}
	return nil
}

// saveHeapProfiles saves the heap and allocation profiles of every
// Switchboard proxy in o.PprofDir.
func saveHeapProfiles(ctx context.Context, o options, proxies []*proxy, res *result) {
	for _, p := range proxies {
		if p.Kamailio {
			continue
		}
		for _, kind := range []string{"heap", "allocs"} {
			file := filepath.Join(o.PprofDir, fmt.Sprintf("%s-%s.%s.pprof", o.Setup, p.Name, kind))
			if err := p.profile(ctx, kind, file); err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("%s: %s profile: %v", p.Name, kind, err))
				continue
			}
			res.Profiles = append(res.Profiles, file)
		}
	}
}

// playStep plays one rate of a workload against p and judges it.
func playStep(ctx context.Context, o options, p *proxy, workload string, rate int, dur time.Duration, try int, work string, sippCPUs string, res *result) (step, error) {
	label := "try"
	if workload == workLatency {
		label = "round"
	}
	dir := filepath.Join(work, p.Name, fmt.Sprintf("%s-%d-%s%d", workload, rate, label, try))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return step{}, err
	}
	profRate := o.PprofRate
	if workload == workRegistrations {
		profRate = o.PprofRegRate
	}
	var prof string
	if o.PprofDir != "" && !p.Kamailio && try == 1 && workload != workLatency && rate == profRate {
		prof = filepath.Join(o.PprofDir, fmt.Sprintf("%s-%s-%s-%d.cpu.pprof", o.Setup, p.Name, workload, rate))
	}
	var st step
	switch workload {
	case workCalls:
		st = runCalls(ctx, o, p, workCalls, rate, dur, dir, sippCPUs, prof)
	case workLatency:
		st = runCalls(ctx, o, p, workLatency, rate, dur, dir, sippCPUs, "")
	default:
		st = runRegistrations(ctx, o, p, rate, dur, dir, sippCPUs, prof)
	}
	if prof != "" && st.Err == "" {
		res.Profiles = append(res.Profiles, prof)
		if _, err := os.Stat(heapProfile(prof)); err == nil {
			res.Profiles = append(res.Profiles, heapProfile(prof))
		}
		set := workShares(ctx, p, workload, rate, prof, res)
		set.ProfiledCPU = st.ProfiledCPU
		res.Shares = append(res.Shares, set)
	}
	st.Try = try
	st.judge()
	return st, nil
}

// workShares charges the time of the CPU profile prof, taken during the
// workload (calls or REGISTERs) at rate through p, and of the heap
// profile beside it, to their owners; what fails is noted in res.
func workShares(ctx context.Context, p *proxy, workload string, rate int, prof string, res *result) profileSet {
	set := profileSet{Target: p.Name, Workload: workload, Rate: rate}
	var err error
	if set.Shares, err = profileShares(ctx, prof, ""); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: the profile's owners: %v", p.Name, err))
	}
	if _, err := os.Stat(heapProfile(prof)); err == nil {
		set.Heap, _ = profileShares(ctx, heapProfile(prof), "inuse_space")
	}
	return set
}

// logf writes a progress line to o.Log, if any.
func (o options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// scenario returns the path of a SIPp scenario in examples/sipp.
func scenario(o options, name string) string {
	return filepath.Join(o.Root, "examples", "sipp", name)
}
