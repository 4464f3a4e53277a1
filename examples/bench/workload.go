package main

// The workloads: calls through the proxy and registrations at it, each a
// SIPp run or two, with what SIPp counted turned into a step.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// registerCallee registers user at p with the Contact of the callee at
// calleeIP:port (register.xml, one REGISTER).
func registerCallee(ctx context.Context, o options, p *proxy, user string, port int, dir, cpus string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	local, err := freeUDPPort(calleeIP)
	if err != nil {
		return err
	}
	s, err := startSipp(ctx, "register", dir, cpus, p.Addr,
		"-sf", scenario(o, "register.xml"), "-s", user, "-i", calleeIP, "-p", strconv.Itoa(local),
		"-key", "contact_port", strconv.Itoa(port), "-m", "1",
		"-recv_timeout", ms(recvTimeout), "-timeout", "20s", "-timeout_error")
	if err != nil {
		return err
	}
	s.wait(30 * time.Second)
	c, err := s.stats()
	if err != nil || s.exitCode() != 0 || c.int("SuccessfulCall") != 1 {
		return fmt.Errorf("%s: registering %s failed (%v): %s", p.Name, user, err, s.describe())
	}
	return nil
}

// heapProfile names the heap profile taken after the CPU profile file.
func heapProfile(cpu string) string { return strings.TrimSuffix(cpu, ".cpu.pprof") + ".heap.pprof" }

// runCalls plays calls of workload at rate per second for dur through p: a
// callee (bench_uas.xml) at calleeIP on a new port, registered as a user of
// its own, and a caller (callerScenario) at callerIP. A new callee and user for
// every step: what is left of an earlier step (a CANCEL the proxy still
// sends for a call that failed) never reaches this one. With profile set,
// a CPU profile of the proxy is taken meanwhile, and a heap profile at its end.
func runCalls(ctx context.Context, o options, p *proxy, workload string, rate int, dur time.Duration, dir, cpus, profile string) step {
	n := rate * int(dur/time.Second)
	st := step{Target: p.Name, Workload: workload, Rate: rate, Planned: n, Load: loadAvg()}
	timeout := dur + 30*time.Second
	fail := func(err error) step {
		st.Err = err.Error()
		return st
	}
	uasPort, err := freeUDPPort(calleeIP)
	if err != nil {
		return fail(err)
	}
	user := "callee-" + filepath.Base(dir) // calls-1600-try1, latency-800-round2
	if err := registerCallee(ctx, o, p, user, uasPort, filepath.Join(dir, "register"), cpus); err != nil {
		return fail(err)
	}
	m, err := startMeter(p)
	if err != nil {
		return fail(err)
	}
	uas, err := startSipp(ctx, "uas", dir, cpus,
		"-sf", scenario(o, "bench_uas.xml"), "-i", calleeIP, "-p", strconv.Itoa(uasPort), "-m", strconv.Itoa(n),
		"-recv_timeout", ms(recvTimeout), "-timeout", secs(timeout+10*time.Second))
	if err != nil {
		m.finish(&st)
		return fail(err)
	}
	if err := waitUDPBound(ctx, calleeIP, uasPort, uas.done, 10*time.Second); err != nil {
		uas.stop()
		m.finish(&st)
		return fail(fmt.Errorf("callee: %w", err))
	}
	prof := startProfile(ctx, o, p, rate, dur, profile)
	sf := callerScenario(workload)
	uac, err := startCaller(ctx, o, p, "uac", dir, cpus, sf, rate, n, timeout, "-s", user)
	if err != nil {
		uas.stop()
		prof.wait()
		m.finish(&st)
		return fail(err)
	}
	uac.wait(timeout + 10*time.Second)
	uas.wait(3 * time.Second)
	profErr := prof.wait()
	st.ProfiledCPU = prof.cpu
	st.Wall = uac.wall
	st.UACCPU, st.UASCPU = uac.cpu(), uas.cpu()
	m.finish(&st)
	if profErr != nil {
		return fail(fmt.Errorf("profile: %w", profErr))
	}
	c, err := uac.stats()
	if err != nil {
		return fail(fmt.Errorf("caller: %v: %s", err, uac.describe()))
	}
	cs, err := uas.stats()
	if err != nil {
		return fail(fmt.Errorf("callee: %v: %s", err, uas.describe()))
	}
	st.count(c, cs)
	st.ViaProxy = cs.int("SuccessfulCall")
	fillRTT(&st, dir, strings.TrimSuffix(sf, ".xml"))
	return st
}

// profiling is a CPU profile of a proxy under way, then a heap profile.
type profiling struct {
	wg  sync.WaitGroup
	err error
	// cpu is the proxy's CPU time while the CPU profile was taken (0:
	// unknown), to tell how much of it the profile's samples hold.
	cpu time.Duration
}

// startProfile takes a CPU profile of p for all but the last second of a
// step of dur into file, then a heap profile beside it (heapProfile); it
// does nothing when file is "".
func startProfile(ctx context.Context, o options, p *proxy, rate int, dur time.Duration, file string) *profiling {
	pr := &profiling{}
	if file == "" {
		return pr
	}
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		secs := max(1, int(dur/time.Second)-1)
		before, errBefore := p.cpu()
		pr.err = p.profile(ctx, fmt.Sprintf("profile?seconds=%d", secs), file)
		if after, err := p.cpu(); err == nil && errBefore == nil {
			pr.cpu = after - before
		}
		if pr.err == nil {
			// The heap while the load runs: the transactions that
			// linger are most of what the garbage collector scans.
			// Best effort: the step stands without it.
			if err := p.profile(ctx, "heap", heapProfile(file)); err != nil {
				o.logf("%s: heap profile at %d/s: %v", p.Name, rate, err)
			}
		}
	}()
	return pr
}

// wait waits for the profiles and returns the CPU profile's error.
func (pr *profiling) wait() error {
	pr.wg.Wait()
	return pr.err
}

// callerScenario is the caller of a workload of calls: bench_order_uac.xml
// for the order check, which requires the 180, else bench_uac.xml.
func callerScenario(workload string) string {
	if workload == workOrder {
		return "bench_order_uac.xml"
	}
	return "bench_uac.xml"
}

// runRegistrations sends REGISTERs at rate per second for dur to p, each
// for a new user (bench_register.xml with an injection file). With profile
// set, a CPU profile of the proxy is taken meanwhile, and a heap profile
// at its end.
func runRegistrations(ctx context.Context, o options, p *proxy, rate int, dur time.Duration, dir, cpus, profile string) step {
	n := rate * int(dur/time.Second)
	st := step{Target: p.Name, Workload: workRegistrations, Rate: rate, Planned: n, Load: loadAvg()}
	timeout := dur + 30*time.Second
	fail := func(err error) step {
		st.Err = err.Error()
		return st
	}
	users := filepath.Join(dir, "users.csv")
	if err := writeUsers(users, fmt.Sprintf("r%d-", rate), n); err != nil {
		return fail(err)
	}
	m, err := startMeter(p)
	if err != nil {
		return fail(err)
	}
	prof := startProfile(ctx, o, p, rate, dur, profile)
	uac, err := startCaller(ctx, o, p, "reg", dir, cpus, "bench_register.xml", rate, n, timeout, "-inf", users)
	if err != nil {
		prof.wait()
		m.finish(&st)
		return fail(err)
	}
	uac.wait(timeout + 10*time.Second)
	profErr := prof.wait()
	st.ProfiledCPU = prof.cpu
	st.Wall = uac.wall
	st.UACCPU = uac.cpu()
	m.finish(&st)
	if profErr != nil {
		return fail(fmt.Errorf("profile: %w", profErr))
	}
	c, err := uac.stats()
	if err != nil {
		return fail(fmt.Errorf("%v: %s", err, uac.describe()))
	}
	st.count(c)
	fillRTT(&st, dir, "bench_register")
	return st
}

// startCaller starts the SIPp that offers n calls (or REGISTERs) at rate
// per second to p from callerIP, with the scenario sf of examples/sipp,
// timing the first response of each with -trace_rtt.
func startCaller(ctx context.Context, o options, p *proxy, label, dir, cpus, sf string, rate, n int, timeout time.Duration, extra ...string) (*sipp, error) {
	local, err := freeUDPPort(callerIP)
	if err != nil {
		return nil, err
	}
	args := []string{p.Addr, "-sf", scenario(o, sf), "-i", callerIP, "-p", strconv.Itoa(local),
		"-r", strconv.Itoa(rate), "-m", strconv.Itoa(n),
		"-recv_timeout", ms(recvTimeout), "-timeout", secs(timeout),
		"-trace_rtt", "-rtt_freq", strconv.Itoa(rttFreq(n))}
	return startSipp(ctx, label, dir, cpus, append(args, extra...)...)
}

// fillRTT sets the percentiles of rtd 1 from the -trace_rtt files, and
// the rate at which its answers came.
func fillRTT(st *step, dir, scenario string) {
	r, err := rtts(dir, scenario)
	if err != nil {
		return
	}
	ms := durations(r[1])
	var ok bool
	if st.P50, ok = percentile(ms, 50); ok {
		st.P99, _ = percentile(ms, 99)
		st.HaveRTT = true
	}
	st.Answered, _ = rate(r[1])
}

// writeUsers writes a SIPp injection file of n users named prefix0,
// prefix1, ...
func writeUsers(path, prefix string, n int) error {
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := 0; i < n; i++ {
		b.WriteString(prefix)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(";\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func ms(d time.Duration) string   { return strconv.FormatInt(d.Milliseconds(), 10) }
func secs(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }
