package main

// The proxies under test: Switchboard with a config of examples/ and
// Kamailio with examples/bench/kamailio.cfg, each a process (Kamailio a
// group of them) started by the harness, listening on UDP on 127.0.0.1.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

// target is a proxy configuration the harness measures.
type target struct {
	// Name is how the tables name it: sb-seed, sb-seed-memory, sb-minimal,
	// sb-bolt, kamailio (kamailio-nN once its workers are set).
	Name string
	// Kamailio is true for Kamailio, false for Switchboard.
	Kamailio bool
	// Children is Kamailio's number of UDP workers (-n); 0 for Switchboard.
	Children int
	// Example is the Switchboard config in examples/ whose chain it runs.
	Example string
	// Store is Switchboard's [store] backend: memory or bolt; "" leaves
	// the example's own, which is the default (bolt) for seed.toml.
	Store string
	// About says what it is, for the report.
	About string
	// RcvBuf is the receive buffer of its UDP socket, as measured once
	// it started (see proxy.RcvBuf).
	RcvBuf int64
	// Bindings says where it keeps registrations: Switchboard's store or
	// Kamailio's usrloc mode, so that the report sets them side by side.
	Bindings string
}

// The Bindings of the targets.
const (
	bindingsMemory   = "in memory: Switchboard's memory store"
	bindingsBolt     = "durable: Switchboard's bolt store, the default, every registration fsynced before its 200"
	bindingsKamailio = "in memory: usrloc db_mode 0 (Kamailio's durable modes need an SQL module, none installed: no durable Kamailio to compare bolt with)"
)

// targets are every proxy configuration the harness knows, in the order
// of the report.
var targets = []target{
	{Name: "sb-seed", Example: "seed.toml",
		About:    "Switchboard with examples/seed.toml as shipped: parse, registrar, location, record_route, rewrite (\"OK THANKS\" on every 200), calllog (event log and CDRs to files), forward; its default store (bolt)",
		Bindings: bindingsBolt},
	{Name: "sb-seed-memory", Example: "seed.toml", Store: "memory",
		About:    "Switchboard with examples/seed.toml and `[store] backend = \"memory\"`: the seed against Kamailio's usrloc in memory",
		Bindings: bindingsMemory},
	{Name: "sb-minimal", Example: "minimal.toml", Store: "memory",
		About:    "Switchboard, examples/minimal.toml's chain: registrar, location, record_route, forward; memory store",
		Bindings: bindingsMemory},
	{Name: "sb-bolt", Example: "minimal.toml", Store: "bolt",
		About:    "Switchboard, the minimal chain with the persistent bolt store (every registration synced to disk)",
		Bindings: bindingsBolt},
	{Name: "kamailio", Kamailio: true,
		About:    "Kamailio with examples/bench/kamailio.cfg: maxfwd, sanity, registrar, usrloc in memory (db_mode 0), rr, tm, sl",
		Bindings: bindingsKamailio},
}

// findTarget returns the target with that name.
func findTarget(name string) (target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return target{}, false
}

// withChildren returns a Kamailio target once for each number of workers
// in perCore times cores (its name kamailio-nN), and any other target as
// it is: Kamailio's figure is its best over these.
func withChildren(t target, perCore []int, cores int) []target {
	if !t.Kamailio {
		return []target{t}
	}
	var out []target
	for _, k := range perCore {
		v := t
		v.Children = k * cores
		v.Name = fmt.Sprintf("%s-n%d", t.Name, v.Children)
		v.About = fmt.Sprintf("%s; %d UDP workers (%d × %d cores)", t.About, v.Children, k, cores)
		out = append(out, v)
	}
	return out
}

// proxy is a running proxy.
type proxy struct {
	target
	// Addr is the UDP host:port it listens on.
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// pids are the processes whose CPU and memory count: Kamailio's main
	// process and its workers, or Switchboard's one process.
	pids []int
	// RcvBuf is the receive buffer of its UDP socket as the kernel
	// reports it (ss's rb: twice what was asked for, capped at
	// net.core.rmem_max); 0 when unknown.
	RcvBuf int64
	// started is when its process started.
	started time.Time
	// httpAddr and token reach Switchboard's pprof endpoint.
	httpAddr string
	token    string
}

// startProxy starts t in dir, pinned to cpus ("" for no pinning), and
// returns once it answers an OPTIONS request. bin is the Switchboard
// binary.
func startProxy(ctx context.Context, t target, o options, bin, dir, cpus string) (*proxy, error) {
	port, err := freeUDPPort(proxyIP)
	if err != nil {
		return nil, err
	}
	p := &proxy{target: t, Addr: net.JoinHostPort(proxyIP, strconv.Itoa(port)), dir: dir, done: make(chan struct{})}
	var name string
	var args []string
	if t.Kamailio {
		name = "kamailio"
		args = []string{
			"-f", filepath.Join(o.Root, "examples", "bench", "kamailio.cfg"),
			"-DD", "-E",
			"-l", "udp:" + p.Addr,
			"-n", strconv.Itoa(t.Children),
			"-m", strconv.Itoa(o.KamailioShm), "-M", "32",
			// The socket receive buffer Switchboard asks for by default
			// (server.udp_receive_buffer): Kamailio's maxbuffer.
			"-b", strconv.Itoa(config.DefaultUDPReceiveBuffer),
			"-P", filepath.Join(dir, "kamailio.pid"),
			"-Y", dir,
			"-w", dir,
		}
	} else {
		cfg, err := p.switchboardConfig(o.Root, o.MemoryLimit, o.Linger)
		if err != nil {
			return nil, err
		}
		name = bin
		args = []string{"-config", cfg, "-listen", "udp://" + p.Addr, "-watch=false"}
	}
	if cpus != "" {
		args = append([]string{"-c", cpus, name}, args...)
		name = "taskset"
	}
	logPath := filepath.Join(dir, "proxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// Its own process group, so that a stop reaches Kamailio's workers;
	// and a SIGTERM when the harness dies, so that nothing outlives it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if !t.Kamailio && o.GCTrace {
		p.cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s %s: %w", t.Name, name, strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	if err := p.waitReady(ctx, 20*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w\n%s", t.Name, err, tailFile(logPath, 3000))
	}
	p.pids = []int{p.cmd.Process.Pid}
	if t.Kamailio {
		p.pids = append(p.pids, children(p.cmd.Process.Pid)...)
	}
	p.RcvBuf, _ = receiveBuffer(proxyIP, port)
	return p, nil
}

// serverTable finds the [server] header line of a config, a comment after
// it or a carriage return included.
var serverTable = regexp.MustCompile(`(?m)^\[server\][ \t]*(#[^\n]*)?\r?$`)

// withMemoryLimit returns the config text with server.memory_limit set to
// limit, in its [server] table (one is added if it has none); "" leaves
// the text alone.
func withMemoryLimit(text, limit string) string {
	if limit == "" {
		return text
	}
	return inServerTable(text, fmt.Sprintf("memory_limit = %q # added by examples/bench\n", limit))
}

// inServerTable returns the config text with line first in its [server]
// table (one is added if it has none).
func inServerTable(text, line string) string {
	if loc := serverTable.FindStringIndex(text); loc != nil {
		return text[:loc[1]] + "\n" + line + strings.TrimPrefix(text[loc[1]:], "\n")
	}
	return "[server]\n" + line + "\n" + text
}

// switchboardConfig writes dir/config.toml: the example config with the
// [store] of the target, server.memory_limit and server.linger (unless
// ""), no limit of INVITEs in flight per called user, and an [http]
// listener with pprof and without the console, and returns its path. The
// event log and CDRs of the seed's calllog stage go to dir.
func (p *proxy) switchboardConfig(root, memoryLimit, linger string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "examples", p.Example))
	if err != nil {
		return "", err
	}
	text := string(data)
	for _, section := range []string{"[store]", "[http]"} {
		if strings.Contains(text, "\n"+section) || strings.HasPrefix(text, section) {
			return "", fmt.Errorf("examples/%s has a %s section already: the harness adds its own", p.Example, section)
		}
	}
	httpPort, err := freeTCPPort(proxyIP)
	if err != nil {
		return "", err
	}
	p.httpAddr = net.JoinHostPort(proxyIP, strconv.Itoa(httpPort))
	p.token = randomToken()
	// Every call of the harness goes to one callee, a load generator
	// rather than a phone: the guard of a called user's INVITEs in flight
	// would refuse calls (486) whenever the proxy falls a tenth of a
	// second behind at 1000 calls/s. Kamailio's config has no such guard.
	text = inServerTable(text, "max_invites_per_callee = -1 # added by examples/bench: one callee takes every call\n")
	// Memory set aside for the proxy, as Kamailio gets -m.
	text = withMemoryLimit(text, memoryLimit)
	if linger != "" {
		text = inServerTable(text, fmt.Sprintf("linger = %q # added by examples/bench\n", linger))
	}
	var b strings.Builder
	b.WriteString(text)
	b.WriteString("\n# Added by examples/bench.\n")
	if p.Store != "" {
		fmt.Fprintf(&b, "[store]\nbackend = %q\n", p.Store)
		if p.Store == "bolt" {
			b.WriteString("path = \"switchboard.db\"\n")
		}
	}
	// The console stays off: the example has no [http] listener, and so
	// no console keeping every call's messages; the harness's listener
	// is for the profiler only.
	fmt.Fprintf(&b, "\n[http]\nlisten = %q\ntoken = %q\npprof = true\nconsole = false\n", p.httpAddr, p.token)
	path := filepath.Join(p.dir, "config.toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// waitReady sends OPTIONS to the proxy until it answers anything.
func (p *proxy) waitReady(ctx context.Context, limit time.Duration) error {
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(proxyIP, "0"))
	if err != nil {
		return err
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp4", p.Addr)
	if err != nil {
		return err
	}
	local := conn.LocalAddr().String()
	deadline := time.Now().Add(limit)
	buf := make([]byte, 4096)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		msg := optionsProbe(p.Addr, local, i)
		if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ") {
			return nil
		}
	}
	return fmt.Errorf("no answer to OPTIONS at %s after %v", p.Addr, limit)
}

func optionsProbe(proxyAddr, local string, n int) string {
	return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-bench-probe-%d;rport\r\n"+
		"From: <sip:probe@%s>;tag=probe%d\r\n"+
		"To: <sip:%s>\r\n"+
		"Call-ID: bench-probe-%d@%s\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Max-Forwards: 70\r\n"+
		"Content-Length: 0\r\n\r\n",
		proxyAddr, local, n, local, n, proxyAddr, n, local)
}

// cpu returns the CPU time the proxy's processes used so far.
func (p *proxy) cpu() (time.Duration, error) {
	var sum time.Duration
	for _, pid := range p.pids {
		d, err := procCPU(pid)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p.Name, err)
		}
		sum += d
	}
	return sum, nil
}

// memory returns the proxy's memory now: the sum of the proportional set
// sizes of its processes (Switchboard's one, Kamailio's main process and
// workers, their shared memory counted once).
func (p *proxy) memory() int64 {
	var sum int64
	for _, pid := range p.pids {
		n, _ := pss(pid)
		sum += n
	}
	return sum
}

// drops returns the datagrams dropped so far at the proxy's socket because
// its receive buffer was full.
func (p *proxy) drops() (int64, error) {
	host, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, err
	}
	return udpSocketDrops(host, n)
}

// profile fetches a pprof profile of Switchboard (path such as
// "profile?seconds=8" or "heap") into file.
func (p *proxy) profile(ctx context.Context, path, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := p.get(ctx, "/debug/pprof/"+path, f); err != nil {
		f.Close()
		os.Remove(file)
		return err
	}
	return f.Close()
}

// get fetches path from Switchboard's [http] listener into w.
func (p *proxy) get(ctx context.Context, path string, w io.Writer) error {
	if p.httpAddr == "" {
		return fmt.Errorf("%s has no http listener", p.Name)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+p.httpAddr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 500))
		return fmt.Errorf("GET %s: %s: %s", path, res.Status, body)
	}
	_, err = io.Copy(w, res.Body)
	return err
}

// stop ends the proxy: SIGTERM, and SIGKILL to its process group after
// 10 s. It returns an error when the proxy had exited by itself.
func (p *proxy) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited during the run: %v", p.Name, p.err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	// Kamailio's workers end with the main process; make sure.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return nil
}

// alive reports whether the proxy still runs.
func (p *proxy) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// freeUDPPort returns a UDP port free on ip right now.
func freeUDPPort(ip string) (int, error) {
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// freeTCPPort returns a TCP port free on ip right now.
func freeTCPPort(ip string) (int, error) {
	l, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitUDPBound waits until something listens on UDP ip:port, reading the
// kernel's socket table.
func waitUDPBound(ctx context.Context, ip string, port int, done <-chan struct{}, limit time.Duration) error {
	a := net.ParseIP(ip).To4()
	if a == nil {
		return fmt.Errorf("%q is not an IPv4 address", ip)
	}
	want := []string{
		fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port),
		fmt.Sprintf("%02X%02X%02X%02X:%04X", a[0], a[1], a[2], a[3], port),
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 1 && (f[1] == want[0] || f[1] == want[1]) {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("exited before binding its socket")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on udp %s:%d after %v", ip, port, limit)
}
