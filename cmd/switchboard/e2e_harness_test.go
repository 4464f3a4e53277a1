package main

// The end-to-end harness: it builds the switchboard binary once (with the race
// detector), runs it as a real process on loopback, and drives it with SIPp
// phones whose scenarios live in examples/sipp. The tests are in
// e2e_calls_test.go; e2e_scenarios_test.go plays the scenarios SIPp to SIPp.
//
// Addresses: the proxy listens on 127.0.0.1, callers are on 127.0.0.2, callees
// on 127.0.0.3 and 127.0.0.4. Every port is picked free at run time, because
// test packages run in parallel.
//
// SIPp is required: a missing sipp fails the tests, unless
// SWITCHBOARD_E2E_OPTIONAL=1 is set, which skips them instead.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The loopback addresses of the proxy and the phones.
const (
	proxyIP   = "127.0.0.1"
	callerIP  = "127.0.0.2"
	calleeIP  = "127.0.0.3"
	callee2IP = "127.0.0.4"
)

// proxyDomain is the SIP domain the test proxies are authoritative for.
const proxyDomain = "sip.test"

const (
	// readyTimeout bounds the wait for the proxy's "msg=ready" log line.
	readyTimeout = 15 * time.Second
	// stopTimeout bounds a graceful stop (SIGTERM) before the proxy is killed.
	stopTimeout = 10 * time.Second
	// clientTimeout and serverTimeout are SIPp's -timeout for the phones
	// that call and for the phones that wait for calls; serverTimeout is
	// longer because a callee starts before its caller.
	clientTimeout = 20 * time.Second
	serverTimeout = 30 * time.Second
	// killGrace is how long after its -timeout a SIPp is killed if it has
	// not exited by itself.
	killGrace = 15 * time.Second
)

var (
	// switchboardBin is the binary under test, built by TestMain (or given
	// by SWITCHBOARD_BIN, as the network-namespace child of
	// TestBigSDPFragmented gets it).
	switchboardBin string
	// buildErr is why building it failed; the tests that need it report it.
	buildErr error
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if bin := os.Getenv("SWITCHBOARD_BIN"); bin != "" {
		switchboardBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "switchboard")
	// The working directory of a test is its package: cmd/switchboard.
	out, err := exec.Command("go", "build", "-race", "-buildvcs=auto", "-o", bin, ".").CombinedOutput()
	if err != nil {
		buildErr = fmt.Errorf("go build -race -buildvcs=auto -o %s . (in cmd/switchboard): %v\n%s", bin, err, out)
	} else {
		switchboardBin = bin
	}
	return m.Run()
}

// requireE2E stops a test that cannot run: sipp is missing, or the binary
// did not build.
func requireE2E(t *testing.T) {
	t.Helper()
	requireSipp(t)
	if buildErr != nil {
		t.Fatalf("the switchboard binary did not build: %v", buildErr)
	}
	if switchboardBin == "" {
		t.Fatal("no switchboard binary")
	}
}

// requireSipp fails the test when sipp is missing, or skips it when
// SWITCHBOARD_E2E_OPTIONAL=1.
func requireSipp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		if os.Getenv("SWITCHBOARD_E2E_OPTIONAL") == "1" {
			t.Skip("sipp is not installed (Debian package sip-tester); skipping the end-to-end test because SWITCHBOARD_E2E_OPTIONAL=1")
		}
		t.Fatal("sipp is not installed: the end-to-end tests need it (Debian: apt-get install sip-tester); " +
			"set SWITCHBOARD_E2E_OPTIONAL=1 to skip them instead")
	}
}

// freePort returns a port that is free right now on ip for network ("udp" or
// "tcp"). It is taken below Linux's ephemeral range (32768 and up), from a
// place that differs between test processes: there no outgoing connection
// of another test or tool can take it between this check and the proxy's
// bind, or between a proxy's stop and its restart on the same port.
func freePort(t *testing.T, network, ip string) int {
	t.Helper()
	for range portSpan {
		port := portBase + int(nextPort.Add(1)%portSpan)
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		switch network {
		case "udp":
			if c, err := net.ListenPacket("udp4", addr); err == nil {
				c.Close()
				return port
			}
		case "tcp":
			if l, err := net.Listen("tcp4", addr); err == nil {
				l.Close()
				return port
			}
		default:
			t.Fatalf("free port: unknown network %q", network)
		}
	}
	t.Fatalf("no free %s port on %s between %d and %d", network, ip, portBase, portBase+portSpan)
	return 0
}

// The ports freePort hands out: portBase and the portSpan ports above it.
const (
	portBase = 20000
	portSpan = 12000
)

// nextPort is where freePort looks next, started at a random place so
// that test processes running at once look in different places.
var nextPort atomic.Int32

func init() { nextPort.Store(mrand.Int32N(portSpan)) }

// testConfig returns a config for a test proxy: domain sip.test, debug logs,
// a 5 s drain, and the product's chain (parse, registrar, location,
// record_route, forward), with extra stages before forward. An extra stage
// is either a stage name or the body of its [[stage]] table
// ("use = \"rewrite\"\nreason = \"OK THANKS\"").
func testConfig(extra ...string) string {
	var b strings.Builder
	// A drain shorter than stopTimeout: a transaction left hanging by a
	// failed test must not turn the stop into a second failure.
	fmt.Fprintf(&b, "[server]\ndomains = [%q]\ndrain_timeout = \"5s\"\n\n[log]\nlevel = \"debug\"\n", proxyDomain)
	stage := func(body string) {
		if !strings.Contains(body, "=") {
			body = fmt.Sprintf("use = %q", body)
		}
		fmt.Fprintf(&b, "\n[[stage]]\n%s\n", strings.TrimSpace(body))
	}
	for _, s := range []string{"parse", "registrar", "location", "record_route"} {
		stage(s)
	}
	for _, s := range extra {
		stage(s)
	}
	stage("forward")
	return b.String()
}

// logSays reports whether the proxy's log has text, waiting up to within
// for it: the log reaches the test through a pipe, a little after the
// messages the proxy sends.
func (p *proxy) logSays(text string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(p.log.String(), text) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// proxy is a running switchboard process.
type proxy struct {
	// UDP and TCP are the host:port it listens on ("" when not listening on
	// that transport).
	UDP, TCP string
	// ConfigPath is its config file, config.toml in a temporary directory
	// that holds its log file too.
	ConfigPath string

	cmd     *exec.Cmd
	log     *syncBuffer
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
	killed  bool // the test killed it on purpose
	stopped bool // stop has run
	watch   bool
	listens []string
	under   []string // the command the binary runs under, if any
}

// kill ends the proxy with SIGKILL, as a crash would, and waits for it.
func (p *proxy) kill(t *testing.T) {
	t.Helper()
	p.killed = true
	_ = p.cmd.Process.Kill()
	<-p.done
}

// startProxy writes config to a temporary config.toml and runs switchboard
// with it, with -watch=false. listens are -listen URIs; none means UDP and
// TCP on free ports of 127.0.0.1. It returns once the proxy logged
// msg=ready. The proxy is stopped with SIGTERM when the test ends, and the
// test fails if it does not exit with 0, or if its log shows a panic or a
// data race.
func startProxy(t *testing.T, config string, listens ...string) *proxy {
	t.Helper()
	return startProxyWatch(t, config, false, listens...)
}

// startProxyWatch is startProxy with the config file watched (the proxy's
// default, -watch=true) when watch is true: edits of p.ConfigPath reload it.
func startProxyWatch(t *testing.T, config string, watch bool, listens ...string) *proxy {
	t.Helper()
	return startProxyUnder(t, nil, config, watch, listens...)
}

// startProxyUnder is startProxyWatch with the binary run by the command
// under (such as prlimit with its options), when it is not empty.
func startProxyUnder(t *testing.T, under []string, config string, watch bool, listens ...string) *proxy {
	t.Helper()
	requireE2E(t)
	if len(listens) == 0 {
		listens = []string{
			fmt.Sprintf("udp://%s:%d", proxyIP, freePort(t, "udp", proxyIP)),
			fmt.Sprintf("tcp://%s:%d", proxyIP, freePort(t, "tcp", proxyIP)),
		}
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return launchProxy(t, cfgPath, watch, listens, under)
}

// restart stops the proxy with SIGTERM and starts it again with the same
// folder (config, key, store files) and sockets, as an operator's restart
// does.
func (p *proxy) restart(t *testing.T) *proxy {
	t.Helper()
	p.stop(t)
	return launchProxy(t, p.ConfigPath, p.watch, p.listens, p.under)
}

// launchProxy runs switchboard with the config file at cfgPath, under the
// command under when it is not empty, and waits for msg=ready.
func launchProxy(t *testing.T, cfgPath string, watch bool, listens, under []string) *proxy {
	t.Helper()
	dir := filepath.Dir(cfgPath)
	p := &proxy{ConfigPath: cfgPath, log: &syncBuffer{}, logPath: filepath.Join(dir, "switchboard.log"), done: make(chan struct{}), watch: watch, listens: listens, under: under}
	args := []string{"-config", cfgPath, fmt.Sprintf("-watch=%t", watch)}
	for _, l := range listens {
		args = append(args, "-listen", l)
		switch {
		case strings.HasPrefix(l, "udp://"):
			p.UDP = strings.TrimPrefix(l, "udp://")
		case strings.HasPrefix(l, "tcp://"):
			p.TCP = strings.TrimPrefix(l, "tcp://")
		}
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append(append([]string(nil), under...), switchboardBin), args...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	// The control socket goes into the config's folder, whatever the
	// machine has in /run/switchboard (see ctlRun).
	p.cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+dir)
	p.cmd.Stdout = io.MultiWriter(p.log, logFile)
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start switchboard: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })

	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(p.log.String(), "msg=ready") {
		select {
		case <-p.done:
			t.Fatalf("switchboard %s exited before it was ready: %v\n%s", strings.Join(args, " "), p.waitErr, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchboard %s: no msg=ready in its log after %v\n%s", strings.Join(args, " "), readyTimeout, p.log.String())
		}
	}
	return p
}

// stop sends SIGTERM, waits for the exit (killing the process after
// stopTimeout), and checks the exit code and the log.
func (p *proxy) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	p.stopped = true
	select {
	case <-p.done:
		if !p.killed {
			t.Errorf("switchboard exited during the test: %v", p.waitErr)
		}
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.waitErr != nil {
				t.Errorf("switchboard did not exit cleanly after SIGTERM: %v", p.waitErr)
			}
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("switchboard did not exit within %v of SIGTERM: killed", stopTimeout)
		}
	}
	log := p.log.String()
	if strings.Contains(log, "DATA RACE") {
		t.Errorf("the race detector found a data race in switchboard (log below)")
	}
	if strings.Contains(log, "panic") {
		t.Errorf("switchboard's log mentions a panic (log below)")
	}
	if t.Failed() {
		t.Logf("switchboard log (%s):\n%s", p.logPath, log)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scenario returns the path of a SIPp scenario in examples/sipp.
func scenario(t *testing.T, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "examples", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("scenario %s: %v", name, err)
	}
	return path
}

// sippRun is one SIPp process.
type sippRun struct {
	t     *testing.T
	label string // scenario file name, for messages
	args  []string
	dir   string // its trace files

	// IP and Port are the local address (-i, -p); Transport is "udp" or "tcp".
	IP        string
	Port      int
	Transport string

	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error
	timer   *time.Timer
}

// runSipp starts sipp in the background with args, which must name the
// scenario (-sf) and, for a client, the remote address. The harness adds what
// every run needs unless args have it already: -i 127.0.0.2, a free -p, -m 1,
// -timeout (20 s for clients, 30 s for servers) with -timeout_error, and traces
// (-trace_msg, -trace_err, -trace_stat, -trace_screen) in a temporary
// directory. A run that outlives its -timeout by 15 s is killed. Wait for a
// client to finish with Wait or ExpectCalls; a server is stopped (SIGUSR1)
// when the test ends if it still runs.
func runSipp(t *testing.T, args ...string) *sippRun {
	t.Helper()
	return runSippUnder(t, nil, args...)
}

// runSippUnder is runSipp with sipp run by the command under (such as ip
// netns exec NAME) when it is not empty.
func runSippUnder(t *testing.T, under []string, args ...string) *sippRun {
	t.Helper()
	requireSipp(t)
	r := &sippRun{t: t, IP: callerIP, Transport: "udp", out: &syncBuffer{}, done: make(chan struct{})}
	has := func(flag string) (string, bool) {
		for i, a := range args {
			if a == flag {
				if i+1 < len(args) {
					return args[i+1], true
				}
				return "", true
			}
		}
		return "", false
	}
	sf, ok := has("-sf")
	if !ok {
		t.Fatalf("runSipp %v: no -sf scenario", args)
	}
	r.label = filepath.Base(sf)
	server := true
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		server = false // the first argument is the remote host
	}
	if ip, ok := has("-i"); ok {
		r.IP = ip
	} else {
		args = append(args, "-i", r.IP)
	}
	if tr, ok := has("-t"); ok && strings.HasPrefix(tr, "t") {
		r.Transport = "tcp"
	}
	if p, ok := has("-p"); ok {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("runSipp: -p %q: %v", p, err)
		}
		r.Port = n
	} else {
		r.Port = freePort(t, r.Transport, r.IP)
		args = append(args, "-p", strconv.Itoa(r.Port))
	}
	if _, ok := has("-m"); !ok {
		args = append(args, "-m", "1")
	}
	timeout := clientTimeout
	if server {
		timeout = serverTimeout
	}
	if v, ok := has("-timeout"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("runSipp: -timeout %q: give it with a unit, like 10s", v)
		}
		timeout = d
	} else {
		args = append(args, "-timeout", fmt.Sprintf("%ds", int(timeout/time.Second)))
	}
	if _, ok := has("-timeout_error"); !ok {
		args = append(args, "-timeout_error")
	}
	r.dir = t.TempDir()
	args = append(args, "-nostdin",
		"-trace_msg", "-message_file", r.file("messages.log"),
		"-trace_err", "-error_file", r.file("errors.log"),
		"-trace_stat", "-stf", r.file("stat.csv"),
		"-trace_screen", "-screen_file", r.file("screen.log"),
	)
	r.args = args
	argv := append(append(append([]string(nil), under...), "sipp"), args...)
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", strings.Join(args, " "), err)
	}
	r.timer = time.AfterFunc(timeout+killGrace, func() { _ = r.cmd.Process.Kill() })
	go func() {
		r.waitErr = r.cmd.Wait()
		r.timer.Stop()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.Stop()
		}
	})
	return r
}

func (r *sippRun) file(name string) string { return filepath.Join(r.dir, name) }

// Addr is the run's local address, host:port.
func (r *sippRun) Addr() string { return net.JoinHostPort(r.IP, strconv.Itoa(r.Port)) }

// Wait waits for sipp to exit and returns its exit code (-1 when it did not
// exit by itself).
func (r *sippRun) Wait() int {
	<-r.done
	var exit *exec.ExitError
	switch {
	case r.waitErr == nil:
		return 0
	case errors.As(r.waitErr, &exit) && exit.Exited():
		return exit.ExitCode()
	}
	return -1
}

// Stop ends a run that still runs: SIGUSR1 (SIPp's soft exit), then a kill
// after 5 s. It returns the exit code.
func (r *sippRun) Stop() int {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGUSR1)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
		}
	}
	return r.Wait()
}

// sippStats are the cumulative counters of SIPp's -trace_stat file.
type sippStats struct {
	Successful, Failed int
	// Columns holds every cumulative counter by name, like
	// "FailedRegexpDoesntMatch(C)".
	Columns map[string]string
}

// Stats reads the last line of the -trace_stat file.
func (r *sippRun) Stats() (sippStats, error) {
	f, err := os.Open(r.file("stat.csv"))
	if err != nil {
		return sippStats{}, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return sippStats{}, fmt.Errorf("%s: %v", r.file("stat.csv"), err)
	}
	if len(rows) < 2 {
		return sippStats{}, fmt.Errorf("%s: no statistics row", r.file("stat.csv"))
	}
	s := sippStats{Columns: map[string]string{}}
	head, last := rows[0], rows[len(rows)-1]
	for i, name := range head {
		if i < len(last) && strings.HasSuffix(name, "(C)") {
			s.Columns[name] = last[i]
		}
	}
	if s.Successful, err = strconv.Atoi(s.Columns["SuccessfulCall(C)"]); err != nil {
		return s, fmt.Errorf("%s: SuccessfulCall(C): %v", r.file("stat.csv"), err)
	}
	if s.Failed, err = strconv.Atoi(s.Columns["FailedCall(C)"]); err != nil {
		return s, fmt.Errorf("%s: FailedCall(C): %v", r.file("stat.csv"), err)
	}
	return s, nil
}

// ExpectCalls waits for sipp to exit and fails the test unless it exited with
// 0 after exactly calls successful calls and no failed one.
func (r *sippRun) ExpectCalls(calls int) {
	r.t.Helper()
	code := r.Wait()
	stats, err := r.Stats()
	switch {
	case code != 0:
		r.t.Errorf("sipp %s: exit code %d, want 0 (%s)\n%s", r.label, code, exitMeaning(code), r.Report())
	case err != nil:
		r.t.Errorf("sipp %s: %v\n%s", r.label, err, r.Report())
	case stats.Successful != calls || stats.Failed != 0:
		r.t.Errorf("sipp %s: %d successful and %d failed calls, want %d successful and none failed\n%s",
			r.label, stats.Successful, stats.Failed, calls, r.Report())
	}
}

// exitMeaning explains SIPp's exit codes.
func exitMeaning(code int) string {
	switch code {
	case 0:
		return "all calls succeeded"
	case 1:
		return "at least one call failed"
	case 97:
		return "exit on an internal command: calls may have been processed"
	case 99:
		return "normal exit without calls processed"
	case 255:
		return "fatal error, or -timeout reached with -timeout_error"
	case -1:
		return "killed: it outlived its -timeout"
	}
	return "unexpected error"
}

// Report returns what explains a failed run: the command, the unexpected
// messages, the final screen and where the message trace is.
func (r *sippRun) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- sipp %s\n", strings.Join(r.args, " "))
	if data, err := os.ReadFile(r.file("errors.log")); err == nil && len(data) > 0 {
		fmt.Fprintf(&b, "--- errors (%s):\n%s\n", r.file("errors.log"), tail(string(data), 6000))
	}
	if data, err := os.ReadFile(r.file("screen.log")); err == nil && len(data) > 0 {
		fmt.Fprintf(&b, "--- final screen:\n%s\n", tail(string(data), 4000))
	} else {
		fmt.Fprintf(&b, "--- output:\n%s\n", tail(r.out.String(), 4000))
	}
	fmt.Fprintf(&b, "--- messages: %s\n", r.file("messages.log"))
	for _, m := range r.Messages() {
		fmt.Fprintf(&b, "    %s %s: %s\n", m.Transport, m.Direction, m.FirstLine())
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// sipMessage is one message of a SIPp -trace_msg file.
type sipMessage struct {
	Direction string // "sent" or "received"
	Transport string // "UDP" or "TCP"
	Text      string
}

// FirstLine is the request or status line.
func (m sipMessage) FirstLine() string {
	line, _, _ := strings.Cut(m.Text, "\n")
	return strings.TrimRight(line, "\r")
}

// IsRequest tells whether the message is a request with that method.
func (m sipMessage) IsRequest(method string) bool {
	return strings.HasPrefix(m.FirstLine(), method+" ")
}

// Headers returns the values of every header with that name (case-insensitive,
// one entry per header line).
func (m sipMessage) Headers(name string) []string {
	var vals []string
	head, _, _ := strings.Cut(m.Text, "\n\n")
	for i, line := range strings.Split(head, "\n") {
		if i == 0 {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

// Header returns the first value of a header, or "".
func (m sipMessage) Header(name string) string {
	if v := m.Headers(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

var traceSeparator = regexp.MustCompile(`^-{20,} \d{4}-\d{2}-\d{2} `)

// Messages parses the run's -trace_msg file.
func (r *sippRun) Messages() []sipMessage {
	f, err := os.Open(r.file("messages.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var msgs []sipMessage
	var cur *sipMessage
	var body []string
	flush := func() {
		if cur != nil {
			cur.Text = strings.TrimSpace(strings.Join(body, "\n")) + "\n"
			msgs = append(msgs, *cur)
		}
		cur, body = nil, nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	expectKind := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case traceSeparator.MatchString(line):
			flush()
			expectKind = true
		case expectKind:
			expectKind = false
			transport, _, _ := strings.Cut(line, " ")
			switch {
			case strings.Contains(line, "message sent"):
				cur = &sipMessage{Direction: "sent", Transport: transport}
			case strings.Contains(line, "message received"):
				cur = &sipMessage{Direction: "received", Transport: transport}
			}
		case cur != nil:
			body = append(body, line)
		}
	}
	flush()
	return msgs
}

// Received returns the messages received whose first line starts with prefix
// ("INVITE ", "SIP/2.0 200").
func (r *sippRun) Received(prefix string) []sipMessage {
	var out []sipMessage
	for _, m := range r.Messages() {
		if m.Direction == "received" && strings.HasPrefix(m.FirstLine(), prefix) {
			out = append(out, m)
		}
	}
	return out
}

var branchParam = regexp.MustCompile(`(?i);\s*branch=([^;,\s]+)`)

// topBranch returns the branch of a message's top Via.
func topBranch(m sipMessage) string {
	if v := branchParam.FindStringSubmatch(m.Header("Via")); v != nil {
		return v[1]
	}
	return ""
}

// expectOneInvite fails the test unless the run received exactly one initial
// INVITE transaction (retransmissions, same branch, count once).
func (r *sippRun) expectOneInvite() {
	r.t.Helper()
	branches := map[string]bool{}
	for _, m := range r.Received("INVITE ") {
		if strings.Contains(strings.ToLower(m.Header("To")), "tag=") {
			continue // a re-INVITE
		}
		branches[topBranch(m)] = true
	}
	if len(branches) != 1 {
		r.t.Errorf("sipp %s at %s received %d INVITE transactions, want exactly 1\n%s", r.label, r.Addr(), len(branches), r.Report())
	}
}

// expectNothingReceived fails the test if the run received any message.
func (r *sippRun) expectNothingReceived() {
	r.t.Helper()
	var got []string
	for _, m := range r.Messages() {
		if m.Direction == "received" {
			got = append(got, m.FirstLine())
		}
	}
	if len(got) > 0 {
		r.t.Errorf("sipp %s at %s should have received nothing, got: %s\n%s", r.label, r.Addr(), strings.Join(got, "; "), r.Report())
	}
}

// startPhone starts a SIPp server scenario (a callee) on ip, with transport
// "udp" or "tcp", and returns once its socket is bound.
func startPhone(t *testing.T, name, ip, transport string, extra ...string) *sippRun {
	t.Helper()
	args := []string{"-sf", scenario(t, name), "-i", ip}
	if transport == "tcp" {
		args = append(args, "-t", "t1")
	}
	r := runSipp(t, append(args, extra...)...)
	waitListening(t, r)
	return r
}

// callFrom runs a SIPp client scenario from the caller's address to the
// proxy over transport ("udp" or "tcp"), in the background.
func callFrom(t *testing.T, p *proxy, name, transport string, extra ...string) *sippRun {
	t.Helper()
	remote := p.UDP
	args := []string{}
	if transport == "tcp" {
		remote = p.TCP
		args = append(args, "-t", "t1")
	}
	if remote == "" {
		t.Fatalf("the proxy does not listen on %s", transport)
	}
	args = append([]string{remote, "-sf", scenario(t, name), "-i", callerIP}, args...)
	return runSipp(t, append(args, extra...)...)
}

// registerUser registers user at the proxy (over UDP, at proxyAddr) with the
// Contact sip:user@contactIP:contactPort, with ;transport=tcp when transport
// is "tcp". The REGISTER comes from contactIP, like a phone's own would.
func registerUser(t *testing.T, proxyAddr, user, contactIP string, contactPort int, transport string) {
	t.Helper()
	args := []string{proxyAddr, "-sf", scenario(t, "register.xml"), "-i", contactIP,
		"-s", user, "-key", "contact_port", strconv.Itoa(contactPort)}
	if transport == "tcp" {
		args = append(args, "-set", "contact_params", ";transport=tcp")
	}
	r := runSipp(t, args...)
	r.ExpectCalls(1)
	if t.Failed() {
		t.FailNow()
	}
}

// registerPhone registers the phone r (a started callee) as user.
func registerPhone(t *testing.T, p *proxy, user string, r *sippRun) {
	t.Helper()
	registerUser(t, p.UDP, user, r.IP, r.Port, r.Transport)
}

// waitListening waits until the SIPp run has bound its socket (listening, for
// TCP), reading the kernel's socket tables so as not to disturb it.
func waitListening(t *testing.T, r *sippRun) {
	t.Helper()
	// The tables of sipp's own network namespace: a run under ip netns
	// exec has its sockets there.
	table, state := fmt.Sprintf("/proc/%d/net/udp", r.cmd.Process.Pid), "07"
	if r.Transport == "tcp" {
		table, state = fmt.Sprintf("/proc/%d/net/tcp", r.cmd.Process.Pid), "0A"
	}
	ip := net.ParseIP(r.IP).To4()
	if ip == nil {
		t.Fatalf("waitListening: %q is not an IPv4 address", r.IP)
	}
	// /proc prints the address as the hex of the 32-bit word in host order;
	// accept both byte orders.
	want := []string{
		fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], r.Port),
		fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[0], ip[1], ip[2], ip[3], r.Port),
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if socketListed(table, state, want) {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("sipp %s exited before listening on %s %s (exit code %d)\n%s", r.label, r.Transport, r.Addr(), r.Wait(), r.Report())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp %s does not listen on %s %s after 10s\n%s", r.label, r.Transport, r.Addr(), r.Report())
		}
	}
}

func socketListed(table, state string, locals []string) bool {
	data, err := os.ReadFile(table)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != state {
			continue
		}
		for _, l := range locals {
			if f[1] == l {
				return true
			}
		}
	}
	return false
}
