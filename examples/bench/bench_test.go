package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

// TestSmoke runs the harness in smoke mode: one low rate of calls and of
// registrations against every proxy, Kamailio included, and fails unless
// each passed with its response times, CPU and memory measured, and the
// order check (300 calls) ran and reported for sb-minimal and kamailio. It needs
// sipp and kamailio (make test-deps installs both); with
// SWITCHBOARD_BENCH_OPTIONAL=1 a missing tool skips it instead.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("the smoke run of the benchmark harness takes about a minute: not with -short")
	}
	optional := os.Getenv("SWITCHBOARD_BENCH_OPTIONAL") == "1"
	for _, tool := range []struct{ name, pkg string }{{"sipp", "sip-tester"}, {"kamailio", "kamailio"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			if optional {
				t.Skipf("%s is not installed; skipping the smoke run because SWITCHBOARD_BENCH_OPTIONAL=1", tool.name)
			}
			t.Fatalf("%s is not installed: the benchmark harness's smoke run needs it (Debian: apt-get install %s, or make test-deps); "+
				"set SWITCHBOARD_BENCH_OPTIONAL=1 to skip it instead", tool.name, tool.pkg)
		}
	}
	o := smokeOptions()
	root, err := findRoot("")
	if err != nil {
		t.Fatal(err)
	}
	o.Root = root
	o.Log = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(res)
	if err := checkSmoke(res); err != nil {
		t.Fatalf("%v\n%s", err, md)
	}
	// Every section, in both setups; the figures themselves are
	// measurements, not a pass or fail.
	for _, su := range o.Setups {
		r := res.run(su.Name)
		if r == nil {
			t.Fatalf("setup %s did not run", su.Name)
		}
		kam := fmt.Sprintf("kamailio-n%d", r.Opts.cores())
		reportHas(t, md, "### Setup "+su.Name+": ", "Targets of issue 19 in the "+su.Name+" setup")
		sections := strings.SplitAfter(md, "### Setup ")
		reportHas(t, sections[len(sections)-len(o.Setups)+slices.Index(o.Setups, su)],
			"| highest call rate with < 0.1 % failed | ≥ Kamailio's |", "| order check: calls out of order | 0 |",
			"| sb-seed |", "| sb-seed-memory |", "| "+kam+" |", "Switchboard / Kamailio's best", "Tail latency at equal load", "median p99",
			"Other processes took")
		reportHas(t, orderMarkdown(r), "| proxy | calls | out of order |", "| sb-seed | 200 | ", "| "+kam+" | 200 | ")
	}
}

// targetNamed returns the known target of that name.
func targetNamed(t *testing.T, name string) target {
	t.Helper()
	tg, ok := findTarget(name)
	if !ok {
		t.Fatalf("no target %q", name)
	}
	return tg
}

// one is a report of the one setup r.
func one(r *result) *report {
	if r.Opts.Setup == "" {
		r.Opts.Setup, r.Opts.Pin = pinned.Name, true
	}
	return &report{Opts: r.Opts, Runs: []*result{r}}
}

// reportHas fails t unless the report md contains every one of wants.
func reportHas(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

// errorIs fails t unless err contains want, or is nil for a want of "".
func errorIs(t *testing.T, test string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v", test, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: error %v, want %q", test, err, want)
	}
}

// testWriter sends the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		in           string
		ppid         int
		utime, stime uint64
		wantErr      bool
	}{
		{"1234 (kamailio) S 1200 1234 1234 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 1 0 100 1000 10", 1200, 250, 75, false},
		{"99 (a b) c)) R 7 99 99 0 -1 0 0 0 0 0 3 4 0 0", 7, 3, 4, false},
		{"no parenthesis", 0, 0, 0, true},
		{"1 (x) S 0 1", 0, 0, 0, true},
	}
	for i, tc := range tests {
		got, err := parseStat([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("test %d: error %v, want error %v", i, err, tc.wantErr)
			continue
		}
		if err == nil && (got.ppid != tc.ppid || got.utime != tc.utime || got.stime != tc.stime) {
			t.Errorf("test %d: got %+v, want ppid %d utime %d stime %d", i, got, tc.ppid, tc.utime, tc.stime)
		}
	}
}

func TestParseMachineCPU(t *testing.T) {
	busy, total, err := parseMachineCPU([]byte("cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 1 2 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if busy != 1600*time.Millisecond || total != 9800*time.Millisecond {
		t.Errorf("busy %v total %v, want 1.6s and 9.8s", busy, total)
	}
	if _, _, err := parseMachineCPU([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a file without the cpu line parsed")
	}
}

func TestParseUDPDrops(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n" +
		"Udp: 3342392 147895 147108 3637673 147100 0\n" +
		"UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdpLite: 0 0 0 0 9\n"
	n, err := parseUDPDrops([]byte(snmp))
	if err != nil || n != 147100 {
		t.Errorf("drops %d, %v; want 147100", n, err)
	}
	if _, err := parseUDPDrops([]byte("Ip: a\nIp: 1\n")); err == nil {
		t.Error("a file without the Udp lines parsed")
	}
}

func TestParseSocketDrops(t *testing.T) {
	table := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		" 7054: 0200007F:BE64 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 478945 2 000000008468e0c0 0\n" +
		" 8399: 0100007F:83A5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 460882 2 000000009004445b 29252\n"
	n, err := parseSocketDrops([]byte(table), "127.0.0.1", 0x83A5)
	if err != nil || n != 29252 {
		t.Errorf("drops %d, %v; want 29252", n, err)
	}
	if _, err := parseSocketDrops([]byte(table), "127.0.0.1", 5060); err == nil {
		t.Error("a socket that is not there has drops")
	}
}

func TestPercentile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	tests := []struct {
		p    float64
		want float64
	}{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {1, 1}}
	for i, tc := range tests {
		got, ok := percentile(values, tc.p)
		if !ok || got != tc.want {
			t.Errorf("test %d: p%g = %g (%v), want %g", i, tc.p, got, ok, tc.want)
		}
	}
	if _, ok := percentile(nil, 50); ok {
		t.Error("a percentile of nothing")
	}
}

func TestRTTFreq(t *testing.T) {
	tests := []struct{ n, want int }{{80, 20}, {100, 100}, {4000, 200}, {7, 1}, {150, 50}}
	for i, tc := range tests {
		if got := rttFreq(tc.n); got != tc.want {
			t.Errorf("test %d: rttFreq(%d) = %d, want %d", i, tc.n, got, tc.want)
		}
	}
}

func TestReadStatsAndRTT(t *testing.T) {
	dir := t.TempDir()
	stat := "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C);Retransmissions(C);\n" +
		"a;1;2;0;0;\n" +
		"b;3;98;2;5;\n"
	path := filepath.Join(dir, "uac_stat.csv")
	if err := os.WriteFile(path, []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := readStats(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.int("SuccessfulCall") != 98 || c.int("FailedCall") != 2 || c.int("Retransmissions") != 5 || c.int("Missing") != 0 {
		t.Errorf("counters %v: want the last line's cumulative ones", c)
	}
	trace := "Date_ms;response_time_ms;rtd_no\n1.0;4;1\n2.0;0;2\n3.0;8;1\n"
	if err := os.WriteFile(filepath.Join(dir, "bench_uac_123_rtt.csv"), []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := rtts(dir, "bench_uac")
	if err != nil {
		t.Fatal(err)
	}
	if len(r[1]) != 2 || len(r[2]) != 1 || r[1][1] != (rtt{at: 3, ms: 8}) {
		t.Errorf("response times %v, want rtd 1: [1.0;4 3.0;8], rtd 2: [2.0;0]", r)
	}
	if got, ok := rate(r[1]); !ok || got != 500 {
		t.Errorf("rate %g (%v), want 500/s (two answers 2 ms apart)", got, ok)
	}
	if _, ok := rate(r[2]); ok {
		t.Error("a rate from one answer")
	}
}

func TestJudge(t *testing.T) {
	ok := step{Workload: workCalls, Rate: 100, Planned: 1000, Attempted: 1000, Succeeded: 1000, ViaProxy: 1000, Wall: 10 * time.Second}
	tests := []struct {
		change func(*step)
		pass   bool
		why    string
	}{
		{func(*step) {}, true, ""},
		{func(s *step) { s.Succeeded, s.Failed, s.ViaProxy = 999, 1, 999 }, false, "1 of 1000 failed"},
		{func(s *step) { s.Unexpected = 1 }, false, "1 unexpected messages"},
		{func(s *step) { s.ViaProxy = 998 }, false, "only 998 of 1000 calls verified"},
		{func(s *step) { s.Wall = 20 * time.Second }, false, "carried 50/s of 100/s"},
		{func(s *step) { s.Wall, s.Answered = 20*time.Second, 99 }, true, ""},
		{func(s *step) { s.Answered = 80 }, false, "carried 80/s of 100/s"},
		{func(s *step) { s.Workload, s.ViaProxy = workRegistrations, 0 }, true, ""},
	}
	for i, tc := range tests {
		s := ok
		tc.change(&s)
		s.judge()
		if s.Pass != tc.pass || !strings.Contains(s.Why, tc.why) {
			t.Errorf("test %d: pass %v (%q), want %v (%q)", i, s.Pass, s.Why, tc.pass, tc.why)
		}
	}
}

func TestMarkdownAndSummary(t *testing.T) {
	o := fullOptions()
	o.CallRate, o.RegRate = []int{100, 200}, []int{100}
	mk := func(target, work string, rate int, pass bool, cpu time.Duration) step {
		s := step{Target: target, Workload: work, Rate: rate, Planned: rate * 10, Succeeded: rate * 10, ViaProxy: rate * 10,
			Wall: 10 * time.Second, ProxyCPU: cpu, UACCPU: time.Second, UASCPU: time.Second, P50: 1, P99: 4, HaveRTT: true, ProxyPSS: 30 << 20}
		if work == workRegistrations {
			s.ViaProxy = 0
		}
		if !pass {
			s.Succeeded, s.ViaProxy = rate*10-50, rate*10-50
			s.Failed = 50
		}
		s.judge()
		return s
	}
	r := &result{Opts: o, Targets: []target{targetNamed(t, "sb-minimal"), targetNamed(t, "kamailio")}, Steps: []step{
		mk("sb-minimal", workCalls, 100, true, 2*time.Second),
		mk("kamailio", workCalls, 100, true, time.Second),
		mk("sb-minimal", workCalls, 200, false, 5*time.Second),
		mk("kamailio", workCalls, 200, true, 2*time.Second),
		mk("sb-minimal", workRegistrations, 100, true, time.Second),
		mk("kamailio", workRegistrations, 100, true, time.Second),
	}}
	sums := summarize(r)
	if sums[0].Calls != 100 || sums[0].CallsTop || sums[1].Calls != 200 || !sums[1].CallsTop {
		t.Errorf("summaries %+v: want sb-minimal 100 calls/s, kamailio at least 200", sums)
	}
	md := markdown(one(r))
	reportHas(t, md,
		"| sb-minimal | 100 | 2000 µs |",
		"| kamailio | ≥ 200 |",
		"| sb-minimal | ≤ 0.50 | 2.00 (100/s) | 1.00 (100/s) | n/a (both ≥) | 1.00 (100/s) | 1.00 (100/s) |",
		"| 200 | sb-minimal | 1 | 1950 / 2000 | 50 |",
		"fail: 50 of 2000 failed (2.50%)",
	)
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		p99s []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{12}, 12},
		{"odd, unsorted", []float64{40, 8, 12}, 12},
		{"even: the mean of the middle two", []float64{4, 100, 8, 20}, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var steps []*step
			for _, v := range tt.p99s {
				steps = append(steps, &step{P99: v})
			}
			if got := median(steps, p99); got != tt.want {
				t.Errorf("median of %v = %g, want %g", tt.p99s, got, tt.want)
			}
		})
	}
}

func TestLatencyTables(t *testing.T) {
	o := fullOptions()
	o.CallRate, o.RegRate, o.LatencyRates, o.LatencyRounds = []int{100}, []int{100}, []int{800}, 3
	mk := func(target string, round int, p99 float64, pass bool) step {
		s := step{Target: target, Workload: workLatency, Rate: 800, Try: round, Planned: 12000, Succeeded: 12000, ViaProxy: 12000,
			Wall: 15 * time.Second, ProxyCPU: 6 * time.Second, P50: 4, P99: p99, HaveRTT: true}
		if !pass {
			s.Succeeded, s.ViaProxy, s.Failed = 11000, 11000, 1000
		}
		s.judge()
		return s
	}
	r := &result{Opts: o, Targets: []target{targetNamed(t, "sb-minimal"), targetNamed(t, "kamailio")}, Steps: []step{
		mk("sb-minimal", 1, 12, true), mk("kamailio", 1, 16, true),
		mk("kamailio", 2, 600, false), mk("sb-minimal", 2, 40, false),
		mk("sb-minimal", 3, 8, true), mk("kamailio", 3, 20, true),
	}}
	md := markdown(one(r))
	reportHas(t, md,
		"played 800/s against every proxy in 3 rounds of 15 s",
		"| 800 | sb-minimal | 12 ms, 40 ms ✗, 8 ms | 12 ms | 4 ms | 0.0 % | 500 µs | 40% | 2 / 3 |",
		"| 800 | kamailio | 16 ms, 600 ms ✗, 20 ms | 20 ms | 4 ms |",
		"| proxy | 800/s |\n|---|--:|\n| sb-minimal | 0.60 |",
		"The latency series, round by round:",
		"| 800 | kamailio | 2 | 11000 / 12000 | 1000 |",
	)
	// The latency steps are not the series': they decide no figure.
	if sums := summarize(r); sums[0].Calls != 0 || sums[1].Calls != 0 {
		t.Errorf("latency steps counted in the calls series: %+v", sums)
	}
}

func TestUpdateDocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	rb, re := docsMarkers("results")
	ob, oe := docsMarkers("order")
	doc := "# Benchmarks\n\nbefore\n\n" + rb + "\nold\n" + re + "\n\nbetween\n\n" + ob + "\nold order\n" + oe + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		section, text string
		want          []string
	}{
		{"results", "new table\n", []string{rb + "\n\nnew table\n\n" + re, ob + "\nold order\n" + oe}},
		{"order", "new order\n", []string{rb + "\n\nnew table\n\n" + re, ob + "\n\nnew order\n\n" + oe}},
	}
	for i, tc := range tests {
		if err := updateDocs(path, tc.section, tc.text); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		data, _ := os.ReadFile(path)
		got := string(data)
		for _, want := range tc.want {
			if !strings.Contains(got, want) {
				t.Errorf("test %d: updated docs lack %q:\n%s", i, want, got)
			}
		}
		if !strings.HasPrefix(got, "# Benchmarks\n\nbefore\n\n") || !strings.Contains(got, re+"\n\nbetween\n\n"+ob) || !strings.HasSuffix(got, oe+"\n\nafter\n") {
			t.Errorf("test %d: the text around the sections changed:\n%s", i, got)
		}
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateDocs(path, "results", "x"); err == nil {
		t.Error("a file without markers was updated")
	}
}

func TestSwitchboardConfig(t *testing.T) {
	root, err := findRoot("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Kamailio {
			continue
		}
		p := &proxy{target: tg, dir: t.TempDir()}
		path, err := p.switchboardConfig(root, "1GiB", "1s")
		if err != nil {
			t.Fatalf("%s: %v", tg.Name, err)
		}
		data, _ := os.ReadFile(path)
		text := string(data)
		wants := []string{"pprof = true", "console = false", "[[stage]]", "[server]\nlinger = \"1s\"", "memory_limit = \"1GiB\""}
		if tg.Store != "" {
			wants = append(wants, "[store]\nbackend = \""+tg.Store+"\"")
		}
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("%s: config lacks %q:\n%s", tg.Name, want, text)
			}
		}
		// The seed as shipped keeps its own store: the default.
		if tg.Store == "" && strings.Contains(text, "[store]") {
			t.Errorf("%s: the harness set a store:\n%s", tg.Name, text)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", tg.Name, err)
		}
		if want := map[string]string{"": "bolt"}[tg.Store]; want != "" && cfg.Store.Backend != want {
			t.Errorf("%s: store %q, want the default %q", tg.Name, cfg.Store.Backend, want)
		}
		if cfg.Server.MemoryLimit != 1<<30 {
			t.Errorf("%s: memory_limit %s, want 1GiB", tg.Name, cfg.Server.MemoryLimit)
		}
		if cfg.Server.MaxInvitesPerCallee != -1 {
			t.Errorf("%s: max_invites_per_callee %d, want -1 (no limit)", tg.Name, cfg.Server.MaxInvitesPerCallee)
		}
		if cfg.Server.Linger.D() != time.Second || cfg.HTTP.ConsoleOn() {
			t.Errorf("%s: linger %s, console on %v; want 1s, off", tg.Name, cfg.Server.Linger.D(), cfg.HTTP.ConsoleOn())
		}
		// Without -linger, the config's own.
		path, err = p.switchboardConfig(root, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(path); strings.Contains(string(data), "linger") || strings.Contains(string(data), "memory_limit") {
			t.Errorf("%s: no -linger or -memory-limit, yet:\n%s", tg.Name, data)
		}
	}
}

// TestLingerFlag checks that -linger takes what server.linger takes.
func TestLingerFlag(t *testing.T) {
	for _, arg := range []string{"500ms", "33s", "soon"} {
		var stderr strings.Builder
		if code := cli([]string{"-smoke", "-linger", arg}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-linger: ") {
			t.Errorf("-linger %s: exit %d, %q; want 2 and why", arg, code, stderr.String())
		}
	}
}

func TestWithMemoryLimit(t *testing.T) {
	const line = `memory_limit = "1GiB" # added by examples/bench` + "\n"
	tests := []struct {
		name, in, limit, want string
	}{
		{"no limit", "[server]\nlisten = []\n", "", "[server]\nlisten = []\n"},
		{"server first", "[server]\nlisten = []\n", "1GiB", "[server]\n" + line + "listen = []\n"},
		{"server later", "# c\n[log]\nlevel = 'info'\n[server]\nlisten = []\n", "1GiB", "# c\n[log]\nlevel = 'info'\n[server]\n" + line + "listen = []\n"},
		{"a comment after the header", "[server] # the proxy\nlisten = []\n", "1GiB", "[server] # the proxy\n" + line + "listen = []\n"},
		{"CRLF", "[server]\r\nlisten = []\r\n", "1GiB", "[server]\r\n" + line + "listen = []\r\n"},
		{"no server table", "[[stage]]\nuse = 'forward'\n", "1GiB", "[server]\n" + line + "\n[[stage]]\nuse = 'forward'\n"},
		{"not a header", "[server.x]\n[[stage]]\n", "1GiB", "[server]\n" + line + "\n[server.x]\n[[stage]]\n"},
	}
	for i, tc := range tests {
		got := withMemoryLimit(tc.in, tc.limit)
		if got != tc.want {
			t.Errorf("test %d (%s): got\n%q\nwant\n%q", i, tc.name, got, tc.want)
		}
		if tc.limit != "" && strings.Count(got, "[server]") != 1 {
			t.Errorf("test %d (%s): %d [server] tables", i, tc.name, strings.Count(got, "[server]"))
		}
	}
}

func TestCheckSmoke(t *testing.T) {
	mk := func(work string, cpu time.Duration, rss int64) step {
		s := step{Target: "kamailio", Workload: work, Rate: 50, Planned: 100, Succeeded: 100, ViaProxy: 100,
			Wall: 2 * time.Second, ProxyCPU: cpu, HaveRTT: true, ProxyPSS: rss}
		if work == workRegistrations {
			s.ViaProxy = 0
		}
		s.judge()
		return s
	}
	// Out of order or not, the order check only has to run.
	order := step{Target: "kamailio", Workload: workOrder, Rate: 100, Planned: 300, Attempted: 300, Succeeded: 290, Failed: 10}
	tests := []struct {
		name  string
		steps []step
		want  string // "" for no error
	}{
		{"measured", []step{mk(workCalls, 150*time.Millisecond, 20<<20), mk(workRegistrations, 10*time.Millisecond, 20<<20)}, ""},
		{"REGISTERs under a clock tick", []step{mk(workCalls, 150*time.Millisecond, 20<<20), mk(workRegistrations, 0, 20<<20)}, ""},
		{"no CPU at all", []step{mk(workCalls, 0, 20<<20), mk(workRegistrations, 0, 20<<20)}, "CPU was not measured in any step"},
		{"no memory", []step{mk(workCalls, time.Second, 0), mk(workRegistrations, time.Second, 20<<20)}, "memory was not measured"},
		{"no registrations", []step{mk(workCalls, time.Second, 20<<20)}, "no registrations step ran"},
		{"latency series measured", []step{mk(workCalls, time.Second, 20<<20), mk(workRegistrations, 0, 20<<20), mk(workLatency, time.Second, 20<<20), order}, ""},
	}
	for i, tc := range tests {
		r := &result{Targets: []target{targetNamed(t, "kamailio")}, Steps: tc.steps}
		if i == len(tests)-1 {
			r.Opts = smokeOptions()
		}
		errorIs(t, fmt.Sprintf("test %d (%s)", i, tc.name), checkSmokeSetup(r), tc.want)
	}
	// With the latency series in the options, its steps must have run.
	err := checkSmokeSetup(&result{Opts: smokeOptions(), Targets: []target{targetNamed(t, "kamailio")}, Steps: tests[0].steps})
	if err == nil || !strings.Contains(err.Error(), "no latency step ran") {
		t.Errorf("no latency step: error %v", err)
	}
}

func TestReadOrderErrors(t *testing.T) {
	const head = "2026-12-06\t13:50:54.660591\t1796565054.660591: "
	entry := func(expecting, received string) string {
		return head + "Aborting call on unexpected message for Call-Id '1-13944@127.0.0.2': while expecting '" + expecting +
			"' (index 1), received '" + received + "\nVia: SIP/2.0/UDP 127.0.0.2:5998;branch=z9hG4bK-1\nCSeq: 1 INVITE\n\n'"
	}
	tests := []struct {
		name      string
		log       string
		overtaken int
		refused   map[int]int
	}{
		{"none", "The following events occurred:\n", 0, nil},
		{"the 200 while the 100 was expected", entry("100", "SIP/2.0 200 OK"), 1, nil},
		{"the 200 while the 180 was expected", entry("180", "SIP/2.0 200 OK"), 1, nil},
		{"two, and a dead call", entry("100", "SIP/2.0 200 OK") + head + "Dead call 1-1@x (aborted at index 1), received 'SIP/2.0 200 OK\n'" +
			entry("180", "SIP/2.0 200 OK"), 2, nil},
		{"a 100 after the 180", entry("200", "SIP/2.0 100 Trying"), 0, nil},
		{"refusals instead of the 180", entry("180", "SIP/2.0 486 Busy Here") + entry("100", "SIP/2.0 503 Service Unavailable") +
			entry("180", "SIP/2.0 486 Busy Here"), 0, map[int]int{486: 2, 503: 1}},
		{"a receive timeout", head + "Call-Id: 1-1@x, receive timeout on message s:1 without label to jump to (ontimeout attribute): aborting call", 0, nil},
	}
	for i, tc := range tests {
		path := filepath.Join(t.TempDir(), "uac_errors.log")
		if err := os.WriteFile(path, []byte(tc.log), 0o644); err != nil {
			t.Fatal(err)
		}
		var st step
		if err := readOrderErrors(path, &st); err != nil || st.Overtaken != tc.overtaken || !maps.Equal(st.Refused, tc.refused) {
			t.Errorf("test %d (%s): overtaken %d, refused %v, %v; want %d, %v", i, tc.name, st.Overtaken, st.Refused, err, tc.overtaken, tc.refused)
		}
	}
	var st step
	if err := readOrderErrors(filepath.Join(t.TempDir(), "missing.log"), &st); st.Overtaken != 0 || err != nil {
		t.Errorf("no error trace: %d, %v; want 0 and no error", st.Overtaken, err)
	}
}

func TestOrderReport(t *testing.T) {
	mk := func(target string, failed, first int, refused map[int]int, err string) step {
		return step{Target: target, Workload: workOrder, Rate: 1000, Planned: 20000, Attempted: 20000,
			Succeeded: 20000 - failed, Failed: failed, Overtaken: first, Refused: refused, Err: err,
			ProxyCPU: 10 * time.Second, OtherCPU: 2 * time.Second}
	}
	o := fullOptions()
	o.OrderTargets = []string{"sb-minimal", "kamailio"}
	tests := []struct {
		name    string
		targets []target
		steps   []step
		want    []string
		check   string // an error checkOrder must return, "" for none
	}{
		{"both", []target{targetNamed(t, "sb-minimal"), targetNamed(t, "kamailio")},
			[]step{mk("sb-minimal", 4363, 267, map[int]int{486: 3854}, ""), mk("kamailio", 1082, 1082, nil, "")},
			[]string{"20000 calls at 1000 calls/s",
				"| sb-minimal | 20000 | 267 (1.33 %) | 4096 (3854 answered 486, 242 time-outs, or later in the call) | 50% | 10% |",
				"| kamailio | 20000 | 1082 (5.41 %) | 0 | 50% | 10% |"}, ""},
		{"time-outs only", []target{targetNamed(t, "sb-minimal")}, []step{mk("sb-minimal", 12, 2, nil, "")},
			[]string{"| sb-minimal | 20000 | 2 (0.01 %) | 10 (time-outs, or later in the call) |"}, ""},
		{"a harness error", []target{targetNamed(t, "sb-minimal")}, []step{mk("sb-minimal", 0, 0, nil, "callee: exited")},
			[]string{"| sb-minimal | 20000 | n/a: callee: exited | n/a | n/a | n/a |"}, "sb-minimal order check: callee: exited"},
		{"no call made", []target{targetNamed(t, "sb-minimal")}, []step{{Target: "sb-minimal", Workload: workOrder, Planned: 20000}},
			nil, "sipp made no call"},
		{"not played", []target{targetNamed(t, "sb-seed"), targetNamed(t, "sb-minimal")}, nil, nil, "sb-minimal: no order check ran"},
	}
	for i, tc := range tests {
		r := &result{Opts: o, Targets: tc.targets, Steps: tc.steps}
		md := orderMarkdown(r)
		for _, want := range tc.want {
			if !strings.Contains(md, want) {
				t.Errorf("test %d (%s): the report lacks %q:\n%s", i, tc.name, want, md)
			}
		}
		errorIs(t, fmt.Sprintf("test %d (%s)", i, tc.name), checkOrder(r), tc.check)
	}
	if md := orderMarkdown(&result{Opts: o}); md != "" {
		t.Errorf("a report of an order check that did not run: %q", md)
	}
}

func TestReportSections(t *testing.T) {
	order := step{Target: "sb-minimal", Workload: workOrder, Rate: 1000, Planned: 20000, Attempted: 20000, Succeeded: 20000}
	tests := []struct {
		mode  func() options
		steps []step
		want  []string
	}{
		{fullOptions, []step{order}, []string{"results", "order"}},
		{fullOptions, nil, []string{"results"}},
		{orderOptions, []step{order}, []string{"order"}},
	}
	for i, tc := range tests {
		r := &result{Opts: tc.mode(), Targets: []target{targetNamed(t, "sb-minimal")}, Steps: tc.steps}
		var got []string
		for _, s := range reportSections(one(r)) {
			got = append(got, s.name)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("test %d: sections %v, want %v", i, got, tc.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP switchboard_registrations Live bindings.\n# TYPE switchboard_registrations gauge\n" +
		"switchboard_registrations 1e+06\nswitchboard_requests_total{method=\"REGISTER\"} 5\n" +
		"go_memstats_heap_inuse_bytes 2.5e+08\nbroken x\n"
	got := parseMetrics(text)
	want := map[string]float64{"switchboard_registrations": 1e6, "go_memstats_heap_inuse_bytes": 2.5e8}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestMillionMarkdown(t *testing.T) {
	o := millionOptions{options: smokeOptions(), Count: 1000, Rate: 500}
	o.Args = []string{"-million", "-million-count", "1000"}
	hs := []held{
		{Target: targets[1], Sent: 1000, OK: 1000, Wall: 2 * time.Second, Bindings: 1000, RSS: 300 << 20, PSS: 290 << 20, Heap: 200 << 20},
		{Target: targets[0], Sent: 1000, OK: 990, Wall: 3 * time.Second, Bindings: -1, Heap: -1, File: 40 << 20, Err: "exited: signal: killed"},
	}
	md := millionMarkdown(o, hs)
	for _, want := range []string{
		"`go run ./examples/bench -million -million-count 1000`", "1000 REGISTERs at 500/s",
		"| sb-seed-memory | memory | 1000 / 1000 | 2s | 1000 | 300 MiB | 290 MiB | 200 MiB | none |",
		"| sb-seed | bolt (default) | 990 / 1000 | 3s | ? |", "| ? | 40 MiB |", "sb-seed: exited: signal: killed",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
}
