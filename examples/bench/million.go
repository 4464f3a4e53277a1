package main

// The million: how much memory the running proxy takes to hold a million
// registrations, each for an AOR of its own, sent through SIPp as the
// registrations series sends them.

import (
	"context"
	"errors"
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
)

// millionOptions say what a -million run measures.
type millionOptions struct {
	options
	// Count is how many AORs register, at Rate REGISTERs per second.
	Count, Rate int
}

// held is what one proxy held once every REGISTER of a -million run was
// answered.
type held struct {
	Target   target
	Sent     int           // REGISTERs SIPp sent (its calls)
	OK       int           // those answered 200
	Wall     time.Duration // how long SIPp took
	Bindings int           // switchboard_registrations once all were answered (-1: unknown)
	RSS, PSS int64         // the proxy's resident and proportional set sizes then
	Heap     int64         // go_memstats_heap_inuse_bytes then (-1: unknown)
	File     int64         // the bolt file's size (0: no file)
	Err      string
}

// runMillion registers o.Count AORs at every target in turn, each started
// alone in o's setup, and reads its memory once all are answered.
func runMillion(ctx context.Context, o millionOptions) ([]held, error) {
	if _, err := exec.LookPath("sipp"); err != nil {
		return nil, errors.New("sipp is not installed: the harness needs it (Debian: apt-get install sip-tester)")
	}
	proxyCPUs, sippCPUs := "", ""
	if o.Pin {
		proxyCPUs, sippCPUs = o.ProxyCPUs, o.SippCPUs
	}
	work, bin, cleanup, err := workDir(ctx, o.options, "switchboard-million-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	users := filepath.Join(work, "users.csv")
	if err := writeUsers(users, "m-", o.Count); err != nil {
		return nil, err
	}
	var out []held
	for _, name := range o.Targets {
		t, ok := findTarget(name)
		if !ok || t.Kamailio {
			return nil, fmt.Errorf("-million measures Switchboard targets only: %q is not one", name)
		}
		h, err := holdMillion(ctx, o, t, bin, filepath.Join(work, t.Name), users, proxyCPUs, sippCPUs)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// holdMillion starts t, registers o.Count users of the injection file
// users at it, and reads what it holds.
func holdMillion(ctx context.Context, o millionOptions, t target, bin, dir, users, proxyCPUs, sippCPUs string) (held, error) {
	h := held{Target: t, Bindings: -1, Heap: -1}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return h, err
	}
	p, err := startProxy(ctx, t, o.options, bin, dir, proxyCPUs)
	if err != nil {
		return h, err
	}
	defer p.stop()
	o.logf("%s: registering %d users at %d/s", t.Name, o.Count, o.Rate)
	timeout := time.Duration(o.Count/o.Rate)*time.Second + 60*time.Second
	uac, err := startCaller(ctx, o.options, p, "reg", dir, sippCPUs, "bench_register.xml", o.Rate, o.Count, timeout, "-inf", users)
	if err != nil {
		return h, err
	}
	uac.wait(timeout + 10*time.Second)
	h.Wall = uac.wall
	c, err := uac.stats()
	if err != nil {
		h.Err = fmt.Sprintf("%v: %s", err, uac.describe())
		return h, nil
	}
	h.Sent, h.OK = c.int("TotalCallCreated"), c.int("SuccessfulCall")
	if !p.alive() {
		h.Err = fmt.Sprintf("exited: %v", p.err)
		return h, nil
	}
	// What the proxy holds once its REGISTER transactions have ended
	// (they linger for Timer J, 32 s on UDP, absorbing retransmissions).
	metrics, err := p.settled(ctx, 90*time.Second)
	if err != nil {
		h.Err = err.Error()
	}
	if v, ok := metrics["switchboard_registrations"]; ok {
		h.Bindings = int(v)
	}
	if v, ok := metrics["go_memstats_heap_inuse_bytes"]; ok {
		h.Heap = int64(v)
	}
	pid := p.cmd.Process.Pid
	h.RSS, _ = kbField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
	h.PSS, _ = pss(pid)
	if fi, err := os.Stat(filepath.Join(dir, "switchboard.db")); err == nil {
		h.File = fi.Size()
	}
	if o.PprofDir != "" {
		file := filepath.Join(o.PprofDir, fmt.Sprintf("million-%s.heap.pprof", t.Name))
		if err := p.profile(ctx, "heap", file); err != nil {
			o.logf("%s: heap profile: %v", t.Name, err)
		}
	}
	return h, nil
}

// settled polls the proxy's metrics until it has no transaction left, in
// flight or lingering, and returns them; after limit it returns the last
// ones read, with an error.
func (p *proxy) settled(ctx context.Context, limit time.Duration) (map[string]float64, error) {
	deadline := time.Now().Add(limit)
	for {
		m, err := p.metrics(ctx)
		if err == nil && m["switchboard_transactions_in_flight"]+m["switchboard_transactions_lingering"] == 0 {
			return m, nil
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("transactions still under way after %v (%v)", limit, err)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// metrics reads the proxy's Prometheus metrics.
func (p *proxy) metrics(ctx context.Context) (map[string]float64, error) {
	var b strings.Builder
	if err := p.get(ctx, "/metrics", &b); err != nil {
		return nil, err
	}
	return parseMetrics(b.String()), nil
}

// parseMetrics returns the samples without labels of a Prometheus text
// exposition, by name.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// cliMillion runs -million for at most limit and writes its report to
// stdout, to mdPath and to the "million" section of docsPath (each when
// not ""); it returns the exit status.
func cliMillion(o millionOptions, limit time.Duration, mdPath, docsPath string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(o.Setups) == 0 {
		fmt.Fprintln(stderr, "bench: no setup to measure in")
		return 2
	}
	// The first setup: pinned unless -setups says otherwise.
	o.Setup, o.Pin = o.Setups[0].Name, o.Setups[0].Pin
	hs, err := runMillion(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	md := millionMarkdown(o, hs)
	fmt.Fprint(stdout, md)
	if mdPath != "" {
		if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if docsPath != "" {
		if err := updateDocs(docsPath, "million", md); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	for _, h := range hs {
		if h.Err != "" || h.OK != o.Count {
			fmt.Fprintf(stderr, "bench: %s held %d of %d registrations\n", h.Target.Name, h.OK, o.Count)
			return 1
		}
	}
	return 0
}

// millionMarkdown renders what runMillion measured, and how.
func millionMarkdown(o millionOptions, hs []held) string {
	var b strings.Builder
	m := describeMachine()
	fmt.Fprintf(&b, "Run of %s, on %d × %s, %s of memory, Linux %s; %s; %s. Command: `go run ./examples/bench %s`. "+
		"%d REGISTERs at %d/s, each for an AOR of its own (Expires 3600), %s; memory read once the proxy "+
		"had no transaction left (in flight or lingering).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), m.CPUs, m.Model, m.Memory, m.Kernel, m.Go, m.Sipp,
		strings.Join(o.Args, " "), o.Count, o.Rate, pinning(o.options))
	b.WriteString("| proxy | store | answered 200 / sent | took | bindings held | RSS | PSS | Go heap in use | bolt file |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, h := range hs {
		store := h.Target.Store
		if store == "" {
			store = "bolt (default)"
		}
		bindings, heap, file := "?", "?", "none"
		if h.Bindings >= 0 {
			bindings = strconv.Itoa(h.Bindings)
		}
		if h.Heap >= 0 {
			heap = mib(h.Heap)
		}
		if h.File > 0 {
			file = mib(h.File)
		}
		fmt.Fprintf(&b, "| %s | %s | %d / %d | %s | %s | %s | %s | %s | %s |\n",
			h.Target.Name, store, h.OK, h.Sent, h.Wall.Round(time.Second), bindings, mib(h.RSS), mib(h.PSS), heap, file)
	}
	for _, h := range hs {
		if h.Err != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", h.Target.Name, h.Err)
		}
	}
	return b.String()
}
