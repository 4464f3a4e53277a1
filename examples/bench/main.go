// Command bench measures Switchboard side by side with Kamailio on this
// machine, over loopback, with SIPp: calls per second (INVITE, 100, 180,
// 200, ACK, BYE, 200, record-routed, so ACK and BYE traverse the proxy)
// and registrations per second (a new user per REGISTER), at a rising
// series of offered rates, until a proxy fails a rate; then tail latency at
// equal load: the same call rates for every proxy, in rounds; then the
// order check: calls whose callee answers 180 and 200 back to back, and
// whose caller requires the 180 first.
//
//	go run ./examples/bench -smoke    # one low rate per proxy, under a minute
//	go run ./examples/bench -full     # the full series (about 30 minutes)
//	go run ./examples/bench -order    # the order check alone (under two minutes)
//	go run ./examples/bench -full -docs docs/benchmarks.md -pprof /tmp/prof
//
// The proxies: Switchboard with examples/seed.toml's chain, with
// examples/minimal.toml's chain, the minimal chain over the bolt store,
// and Kamailio with examples/bench/kamailio.cfg. Each rate of a series is
// played against every proxy in turn, so that they run under the same
// conditions. docs/benchmarks.md explains the method and the figures.
//
// It needs sipp (Debian package sip-tester) and kamailio (package
// kamailio); with SWITCHBOARD_BENCH_OPTIONAL=1 a missing Kamailio is left
// out instead of failing the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := fs.Bool("smoke", false, "one low rate per proxy: checks the harness works end to end (under a minute)")
	full := fs.Bool("full", false, "the full series of rates, the latency series and the order check (about 30 minutes)")
	soak := fs.Bool("soak", false, "the soak alone: sb-seed at -soak-rate calls per second for -soak-duration in the shared setup, sampled every minute, its collector traced (GODEBUG=gctrace=1)")
	soakRate := fs.Int("soak-rate", 1500, "the soak's offered calls per second")
	soakDur := fs.Duration("soak-duration", 30*time.Minute, "how long the soak offers its rate")
	order := fs.Bool("order", false, "the order check alone, as -full plays it: sb-minimal and kamailio (under two minutes)")
	million := fs.Bool("million", false, "register -million-count users (one AOR each) at every Switchboard target in turn and report the memory that holds them (default targets: sb-seed-memory,sb-seed)")
	millionCount := fs.Int("million-count", 1_000_000, "how many users -million registers")
	millionRate := fs.Int("million-rate", 2000, "the REGISTERs per second -million offers")
	orderRate := fs.Int("order-rate", 0, "the order check's offered calls per second (default: the mode's)")
	orderDur := fs.Duration("order-duration", 0, "how long the order check offers its rate (default: the mode's)")
	targetList := fs.String("targets", "", "comma-separated proxies to measure (default: sb-seed,sb-minimal,sb-bolt,kamailio; with -order, sb-minimal,kamailio)")
	callRates := fs.String("call-rates", "", "comma-separated offered call rates per second (default: the mode's)")
	regRates := fs.String("reg-rates", "", "comma-separated offered REGISTER rates per second (default: the mode's)")
	callDur := fs.Duration("call-duration", 0, "how long each call rate is offered (default: the mode's)")
	regDur := fs.Duration("reg-duration", 0, "how long each REGISTER rate is offered (default: the mode's)")
	latRates := fs.String("latency-rates", "", "comma-separated call rates of the latency series, or none (default: the mode's)")
	latRounds := fs.Int("latency-rounds", 0, "rounds of the latency series (default: the mode's)")
	latDur := fs.Duration("latency-duration", 0, "how long each round of the latency series offers its rate (default: the mode's)")
	setups := fs.String("setups", "", "comma-separated setups to measure, one after the other: pinned (the proxy on -proxy-cpus, sipp on -sipp-cpus, taskset) and shared (nothing pinned) (default: both, shared alone on one CPU)")
	proxyCPUs := fs.String("proxy-cpus", "1", "the CPUs of the proxy when pinned (taskset -c list)")
	sippCPUs := fs.String("sipp-cpus", "0", "the CPUs of sipp when pinned (taskset -c list)")
	perCore := fs.String("kamailio-children", "", "comma-separated numbers of Kamailio's UDP workers (-n) per core it may use, each run as its own proxy (default: 1,2,4 in full mode, 1 otherwise)")
	shm := fs.Int("kamailio-shm", 1024, "Kamailio's shared memory in MB (-m)")
	memLimit := fs.String("memory-limit", "", "set every Switchboard's server.memory_limit (default: the config's own; examples/seed.toml sets none)")
	linger := fs.String("linger", "", "set every Switchboard's server.linger, how long a completed transaction keeps its messages (default: the config's own; examples/seed.toml sets none: 5s)")
	pprofDir := fs.String("pprof", "", "write CPU profiles of Switchboard taken during the calls at -pprof-rate (and the REGISTERs at -pprof-reg-rate), and heap profiles, to this directory")
	pprofRate := fs.Int("pprof-rate", 0, "the call rate to profile at (default: 1000 in full mode, the first rate in smoke mode)")
	pprofRegRate := fs.Int("pprof-reg-rate", 0, "also profile Switchboard during the REGISTERs at this rate (default: none)")
	mdPath := fs.String("md", "", "also write the results as markdown to this file")
	docsPath := fs.String("docs", "", "replace the results sections of this markdown file (docs/benchmarks.md) with the results (with -order, the order section only)")
	root := fs.String("root", "", "the repository (default: found from the working directory)")
	keep := fs.Bool("keep", false, "keep the work directory: proxy logs and sipp traces")
	quietWait := fs.Duration("quiet-wait", -1, "the longest wait for a quiet machine before a rate, 0 for none (default: the mode's; 10s full, 30s before a rate played again)")
	retries := fs.Int("retries", -1, "how many times a failed rate is played again (default: the mode's; 2 full)")
	timeout := fs.Duration("timeout", 0, "stop the run after this long, reporting what it measured (default: 3m smoke, 120m full, 10m order)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := smokeOptions()
	limit := 3 * time.Minute
	modes := 0
	for _, m := range []bool{*smoke, *full, *order, *soak, *million} {
		if m {
			modes++
		}
	}
	switch {
	case modes != 1:
		fmt.Fprintln(stderr, "bench: give exactly one of -smoke, -full, -order, -soak and -million")
		fs.Usage()
		return 2
	case *smoke:
	case *full:
		o = fullOptions()
		limit = 120 * time.Minute
	case *order:
		o = orderOptions()
		limit = 10 * time.Minute
	case *soak:
		o = soakOptions()
		o.SoakRate, o.SoakDur = *soakRate, *soakDur
		limit = *soakDur + 10*time.Minute
	case *million:
		o.Mode = "million"
		o.Targets = []string{"sb-seed-memory", "sb-seed"}
		o.Setups = []setup{pinned}
	}
	if *timeout > 0 {
		limit = *timeout
	}
	var err error
	if o.Root, err = findRoot(*root); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if *targetList != "" {
		o.Targets = splitList(*targetList)
		if o.Mode == "order" {
			o.OrderTargets = o.Targets
		}
	}
	for _, r := range []struct {
		flag string
		into *[]int
	}{{*callRates, &o.CallRate}, {*regRates, &o.RegRate}} {
		if r.flag == "" {
			continue
		}
		if *r.into, err = parseRates(r.flag); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
	}
	switch *latRates {
	case "":
	case "none":
		o.LatencyRates = nil
	default:
		if o.LatencyRates, err = parseRates(*latRates); err != nil {
			fmt.Fprintln(stderr, "bench: -latency-rates:", err)
			return 2
		}
	}
	if *latRounds > 0 {
		o.LatencyRounds = *latRounds
	}
	if *latDur > 0 {
		o.LatencyDur = *latDur
	}
	if *callDur > 0 {
		o.CallDur = *callDur
	}
	if *regDur > 0 {
		o.RegDur = *regDur
	}
	if *orderRate > 0 {
		o.OrderRate = *orderRate
	}
	if *orderDur > 0 {
		o.OrderDur = *orderDur
	}
	if o.CallDur < time.Second || o.RegDur < time.Second || o.LatencyDur < time.Second || o.OrderDur < time.Second {
		fmt.Fprintln(stderr, "bench: durations must be at least 1s")
		return 2
	}
	if *setups != "" {
		o.Setups = nil
		for _, name := range splitList(*setups) {
			switch name {
			case pinned.Name:
				o.Setups = append(o.Setups, pinned)
			case shared.Name:
				o.Setups = append(o.Setups, shared)
			default:
				fmt.Fprintf(stderr, "bench: -setups: %q is not pinned or shared\n", name)
				return 2
			}
		}
	}
	if *perCore != "" {
		if o.KamailioPerCore, err = parseRates(*perCore); err != nil {
			fmt.Fprintln(stderr, "bench: -kamailio-children:", err)
			return 2
		}
	}
	o.ProxyCPUs, o.SippCPUs, o.KamailioShm = *proxyCPUs, *sippCPUs, *shm
	o.MemoryLimit = *memLimit
	if *linger != "" {
		if d, err := time.ParseDuration(*linger); err != nil || d < config.MinLinger || d > config.MaxLinger {
			fmt.Fprintf(stderr, "-linger: %q: want a duration from %s to %s, as server.linger takes\n", *linger, config.MinLinger, config.MaxLinger)
			return 2
		}
	}
	o.Linger = *linger
	if n, err := config.ParseSize(o.MemoryLimit); o.MemoryLimit != "" && (err != nil || n < config.MinMemoryLimit) {
		fmt.Fprintf(stderr, "-memory-limit: %q: want a size of at least %s, such as 1GiB\n", o.MemoryLimit, config.MinMemoryLimit)
		return 2
	}
	if *quietWait >= 0 {
		o.QuietWait, o.QuietWaitRetry = *quietWait, *quietWait
	}
	if *retries >= 0 {
		o.Retries = *retries
	}
	o.Args = args
	o.PprofDir, o.Keep, o.Log = *pprofDir, *keep, stderr
	if *pprofRate > 0 {
		o.PprofRate = *pprofRate
	} else if o.PprofRate == 0 {
		o.PprofRate = o.CallRate[0]
	}
	o.PprofRegRate = *pprofRegRate
	if o.PprofDir != "" {
		if err := os.MkdirAll(o.PprofDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
	}

	if o.Mode == "million" {
		if *millionCount < 1 || *millionRate < 1 {
			fmt.Fprintln(stderr, "bench: -million-count and -million-rate must be at least 1")
			return 2
		}
		mo := millionOptions{options: o, Count: *millionCount, Rate: *millionRate}
		if *timeout == 0 {
			limit = time.Duration(len(o.Targets)) * (time.Duration(mo.Count/mo.Rate)*time.Second + 5*time.Minute)
		}
		return cliMillion(mo, limit, *mdPath, *docsPath, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	sections := reportSections(rep)
	var md strings.Builder
	for _, s := range sections {
		md.WriteString(s.text + "\n")
	}
	fmt.Fprint(stdout, md.String())
	if *mdPath != "" {
		if err := os.WriteFile(*mdPath, []byte(md.String()), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if *docsPath != "" {
		for _, s := range sections {
			if err := updateDocs(*docsPath, s.name, s.text); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
				return 1
			}
		}
	}
	switch o.Mode {
	case "smoke":
		if err := checkSmoke(rep); err != nil {
			fmt.Fprintln(stderr, "bench: smoke run failed:", err)
			return 1
		}
	case "order":
		if err := checkOrders(rep); err != nil {
			fmt.Fprintln(stderr, "bench: order check failed:", err)
			return 1
		}
	}
	return 0
}

// section is a part of the report, by the name of its markers in
// docs/benchmarks.md.
type section struct {
	name, text string
}

// reportSections renders the report: the targets, series and latency
// series of every setup ("results", but in order mode), then the order
// check of every setup ("order"), if it ran.
func reportSections(rep *report) []section {
	var out []section
	if rep.Opts.Mode == "soak" {
		return []section{{"soak", soakMarkdown(rep)}}
	}
	if rep.Opts.Mode != "order" {
		out = append(out, section{"results", markdown(rep)})
	}
	if md := ordersMarkdown(rep); md != "" {
		out = append(out, section{"order", md})
	}
	return out
}

// checkSmoke returns an error unless every setup ran to its end, and in
// each every proxy passed its one rate of each workload, with response
// times, CPU and memory measured, and the order check ran and reported.
// It judges no figure: the smoke run checks the harness, not the proxies.
func checkSmoke(rep *report) error {
	var errs []error
	for _, su := range rep.Opts.Setups {
		r := rep.run(su.Name)
		if r == nil {
			errs = append(errs, fmt.Errorf("setup %s did not run", su.Name))
			continue
		}
		if r.Partial != "" {
			errs = append(errs, fmt.Errorf("setup %s stopped early: %s", su.Name, r.Partial))
		}
		if err := checkSmokeSetup(r); err != nil {
			errs = append(errs, fmt.Errorf("setup %s: %w", su.Name, err))
		}
	}
	return errors.Join(errs...)
}

// checkSmokeSetup is checkSmoke for one setup.
func checkSmokeSetup(r *result) error {
	errs := []error{checkOrder(r)}
	for _, t := range r.Targets {
		// CPU time comes in clock ticks (10 ms): a short step of cheap
		// REGISTERs may take none, so CPU must show in one step at least.
		cpu := false
		works := []string{workCalls, workRegistrations}
		if len(r.Opts.LatencyRates) > 0 && r.Opts.LatencyRounds > 0 {
			works = append(works, workLatency)
		}
		for _, w := range works {
			found := false
			for _, s := range r.Steps {
				if s.Target != t.Name || s.Workload != w {
					continue
				}
				found = true
				cpu = cpu || s.ProxyCPU > 0
				switch {
				case !s.Pass:
					errs = append(errs, fmt.Errorf("%s %s at %d/s: %s", t.Name, w, s.Rate, s.Why))
				case !s.HaveRTT:
					errs = append(errs, fmt.Errorf("%s %s at %d/s: no response times from sipp's -trace_rtt", t.Name, w, s.Rate))
				case s.ProxyPSS <= 0:
					errs = append(errs, fmt.Errorf("%s %s at %d/s: the proxy's memory was not measured", t.Name, w, s.Rate))
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("%s: no %s step ran", t.Name, w))
			}
		}
		if !cpu {
			errs = append(errs, fmt.Errorf("%s: the proxy's CPU was not measured in any step", t.Name))
		}
	}
	return errors.Join(errs...)
}

// checkOrders is checkOrder for every setup that ran.
func checkOrders(rep *report) error {
	var errs []error
	for _, r := range rep.Runs {
		if err := checkOrder(r); err != nil {
			errs = append(errs, fmt.Errorf("setup %s: %w", r.Opts.Setup, err))
		}
	}
	if len(rep.Runs) == 0 {
		errs = append(errs, errors.New("no setup ran"))
	}
	return errors.Join(errs...)
}

// findRoot returns dir, or the directory above the working directory that
// holds Switchboard's go.mod.
func findRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/switchboard-sip/switchboard\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Switchboard go.mod above %s: run from the repository or give -root", wd)
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("rate %q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no rate given")
	}
	return out, nil
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
