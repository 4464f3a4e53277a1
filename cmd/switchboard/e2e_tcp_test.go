package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpRequest returns a request of method (OPTIONS or INVITE) from the
// local address local, for user at the proxy's domain, or for the proxy at
// proxyAddr when user is "", with via as its top Via's sent-by (local when
// "").
func tcpRequest(method, proxyAddr, local, via, user string) string {
	if via == "" {
		via = local
	}
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	uri := "sip:" + proxyAddr
	if user != "" {
		uri = "sip:" + user + "@" + proxyDomain
	}
	return strings.Join([]string{
		method + " " + uri + " SIP/2.0",
		"Via: SIP/2.0/TCP " + via + ";branch=z9hG4bK-tcp-" + id,
		"Max-Forwards: 70",
		"From: <sip:tcp@" + proxyDomain + ">;tag=tcp-" + id,
		"To: <" + uri + ">",
		"Call-ID: tcp-" + id,
		"CSeq: 1 " + method,
		"Contact: <sip:tcp@" + local + ";transport=tcp>",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
}

// tcpOptions sends an OPTIONS to the proxy over a new TCP connection from
// the loopback address from, and returns the status line of the answer.
func tcpOptions(proxyAddr, from string) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp4", proxyAddr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(tcpRequest("OPTIONS", proxyAddr, c.LocalAddr().String(), "", ""))); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// healthWatch asks /health every 50 ms until stopped, and counts the
// answers that failed or took over two seconds.
type healthWatch struct {
	failed atomic.Int64
	asked  atomic.Int64
	last   atomic.Value // the last failure
	stop   chan struct{}
	done   chan struct{}
}

func watchHealth(url string) *healthWatch {
	h := &healthWatch{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(h.done)
		for {
			h.asked.Add(1)
			res, err := client.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					err = errors.New(res.Status)
				}
			}
			if err != nil {
				h.failed.Add(1)
				h.last.Store(err.Error())
			}
			select {
			case <-h.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return h
}

func (h *healthWatch) end() { close(h.stop); <-h.done }

// TestSecurityTCPDescriptors opens more TCP connections than the proxy has
// file descriptors (it runs with RLIMIT_NOFILE 256, hard and soft), the
// attack that stopped its TCP listener for good. The proxy must close
// those past its caps at once, answer /health throughout, and serve TCP
// again once the attacker is gone.
func TestSecurityTCPDescriptors(t *testing.T) {
	requireE2E(t)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit (util-linux) is not installed: this test needs it to run the proxy with few descriptors")
	}
	const nofile, attack = 256, 400
	tests := []struct {
		name   string
		server string   // [server] keys
		from   []string // the attacker's addresses, in turn
		held   int      // connections the proxy may keep
	}{
		// The defaults at 256 descriptors: 96 in total, 48 per source
		// (and as many the proxy may open itself).
		{"one source", "", []string{"127.0.0.1"}, 48},
		{"many sources", "max_connections_per_source = 1000\n", []string{"127.0.0.1", "127.0.0.3", "127.0.0.4"}, 96},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
			cfg := strings.Replace(testConfig(), "[server]\n", "[server]\nheader_timeout = \"5m\"\n"+tc.server, 1) +
				fmt.Sprintf("\n[http]\nlisten = %q\n", httpAddr)
			p := startProxyUnder(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile)}, cfg, false)
			if !p.logSays(fmt.Sprintf("limit=%d", nofile), time.Second) {
				t.Fatalf("the proxy does not log its limit on open files as %d", nofile)
			}
			health := watchHealth("http://" + httpAddr + "/health")
			var conns []net.Conn
			for i := 0; i < attack; i++ {
				from := tc.from[i%len(tc.from)]
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: time.Second}
				c, err := d.Dial("tcp4", p.TCP)
				if err != nil {
					continue // the kernel's backlog is full: as good as refused
				}
				conns = append(conns, c)
			}
			held := countHeld(conns)
			if held > tc.held {
				t.Errorf("%d of %d connections held, want at most %d", held, len(conns), tc.held)
			}
			if len(tc.from) == 1 {
				// Another source gets in while the attacker is at his cap.
				if line, err := tcpOptions(p.TCP, callerIP); err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
					t.Errorf("OPTIONS over TCP from another source during the attack: %q, %v", line, err)
				}
			}
			for _, c := range conns {
				c.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				line, err := tcpOptions(p.TCP, proxyIP)
				if err == nil && strings.HasPrefix(line, "SIP/2.0 200") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("TCP does not serve again after the attack: %q, %v", line, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			health.end()
			if n := health.failed.Load(); n > 0 {
				t.Errorf("/health failed %d times of %d during the attack (last: %v)", n, health.asked.Load(), health.last.Load())
			}
			if p.logSays("tcp socket stopped", 0) {
				t.Error("the TCP listener stopped")
			}
		})
	}
}

// countHeld returns how many of conns the proxy keeps open: the others it
// closed at once.
func countHeld(conns []net.Conn) int {
	var held atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			_, err := c.Read(make([]byte, 1))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				held.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(held.Load())
}

// TestSecurityTCPSlowloris holds connections open without sending a whole
// message: one byte a second, or nothing after a first message. The proxy
// must close them within header_timeout and idle_timeout, and keep the
// connection a phone registered over.
func TestSecurityTCPSlowloris(t *testing.T) {
	cfg := strings.Replace(testConfig(), "[server]\n", "[server]\nheader_timeout = \"2s\"\nidle_timeout = \"3s\"\n", 1)
	p := startProxy(t, cfg)
	dial := func() net.Conn {
		c, err := net.Dial("tcp4", p.TCP)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedWithin reads c (answers and all) until the proxy closes it.
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		return err == nil || errors.Is(err, syscall.ECONNRESET)
	}

	slow := dial()
	start := time.Now()
	go func() {
		msg := tcpRequest("OPTIONS", p.TCP, slow.LocalAddr().String(), "", "")
		for i := 0; i < len(msg); i++ {
			if _, err := slow.Write([]byte{msg[i]}); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	if !closedWithin(slow, 10*time.Second) {
		t.Errorf("a connection sending a byte a second was not closed within 10 s (header_timeout 2s)")
	} else {
		t.Logf("a byte a second: closed after %v", time.Since(start).Round(100*time.Millisecond))
	}

	silent := dial()
	if !closedWithin(silent, 6*time.Second) {
		t.Errorf("a connection that sent nothing was not closed within 6 s (header_timeout 2s)")
	}

	// A phone registers over one connection; another sends an OPTIONS and
	// stays idle. Only the second is closed once idle_timeout passes.
	phone := dial()
	reg := strings.Join([]string{
		"REGISTER sip:" + proxyDomain + " SIP/2.0",
		"Via: SIP/2.0/TCP " + phone.LocalAddr().String() + ";branch=z9hG4bK-tcp-reg",
		"Max-Forwards: 70",
		"From: <sip:alice@" + proxyDomain + ">;tag=reg",
		"To: <sip:alice@" + proxyDomain + ">",
		"Call-ID: tcp-reg",
		"CSeq: 1 REGISTER",
		"Contact: <sip:alice@" + phone.LocalAddr().String() + ";transport=tcp>",
		"Expires: 600",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	if _, err := phone.Write([]byte(reg)); err != nil {
		t.Fatal(err)
	}
	_ = phone.SetReadDeadline(time.Now().Add(3 * time.Second))
	if line, err := bufio.NewReader(phone).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("REGISTER over TCP: %q, %v", line, err)
	}
	idle := dial()
	if _, err := idle.Write([]byte(tcpRequest("OPTIONS", p.TCP, idle.LocalAddr().String(), "", ""))); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(idle, 8*time.Second) {
		t.Errorf("an idle connection without a registration was not closed within 8 s (idle_timeout 3s)")
	}
	// By now the phone's connection has been idle past idle_timeout too.
	_ = phone.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := phone.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the registered phone's connection was closed: %v", err)
	}
}

// TestSecurityTCPResponseVia sends requests over TCP whose top Via names
// another host, and closes the connection before the answer: the answer
// must go to the address the request came from, at the Via's port (RFC
// 3261 18.2.2), never to the Via's host, and its name must not be looked
// up. It runs in a network namespace with no route out, with a DNS server
// of its own on the address /etc/resolv.conf names.
func TestSecurityTCPResponseVia(t *testing.T) {
	servers := resolvConfServers()
	if os.Getenv("SWITCHBOARD_TCPVIA_NETNS") == "" {
		requireE2E(t)
		reexecInNetns(t, "TestSecurityTCPResponseVia", "SWITCHBOARD_TCPVIA_NETNS", servers)
		return
	}
	dns := startDNSRecorder(t, servers)
	// The request goes to a phone that answers after half a second, so
	// that its connection is gone when the answer comes.
	cfg := strings.Replace(testConfig(), "[[stage]]\nuse = \"forward\"", "[[stage]]\nuse = \"forward\"\nfr_timeout = \"3s\"", 1)
	p := startProxy(t, cfg)
	phone := tortureStartSlowPhone(t, 500*time.Millisecond)
	phone.register(t, p.UDP, "bob", proxyDomain)

	// sinks listen on the Via's port, at the request's source (where the
	// answer belongs) and at the host the Via names (where it does not).
	const source, viaIP = proxyIP, "127.0.0.3"
	port := freePort(t, "tcp", source)
	good := startTCPSink(t, net.JoinHostPort(source, strconv.Itoa(port)))
	bad := startTCPSink(t, net.JoinHostPort(viaIP, strconv.Itoa(port)))
	// An OPTIONS is sent and its connection closed at once; an INVITE's
	// connection is closed once its 100 Trying came over it.
	tests := []struct{ name, method, via string }{
		{"a host name", "OPTIONS", "attacker.test:" + strconv.Itoa(port)},
		{"another address", "OPTIONS", net.JoinHostPort(viaIP, strconv.Itoa(port))},
		{"a host name, after 100 Trying", "INVITE", "attacker.test:" + strconv.Itoa(port)},
	}
	for _, tc := range tests {
		for i := 0; i < 5; i++ {
			c, err := net.Dial("tcp4", p.TCP)
			if err != nil {
				t.Fatal(err)
			}
			req := tcpRequest(tc.method, p.TCP, c.LocalAddr().String(), tc.via, "bob")
			callID := header(req, "Call-ID")
			if _, err := c.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			if tc.method == "INVITE" {
				_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
				if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SIP/2.0 100") {
					t.Fatalf("%s: INVITE over TCP: %q, %v, want 100 Trying", tc.name, line, err)
				}
			}
			c.Close()
			if !good.waitFor(callID, 5*time.Second) {
				t.Errorf("%s: the answer to %s did not reach %s:%d", tc.name, callID, source, port)
			}
		}
	}
	if got := bad.all(); len(got) > 0 {
		t.Errorf("answers went to the Via's address %s:%d: %q", viaIP, port, got)
	}
	for _, name := range dns.names() {
		if strings.Contains(name, "attacker") {
			t.Errorf("DNS query for %q", name)
		}
	}
}

func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	return ""
}

// tcpSink records the SIP messages sent to it over TCP.
type tcpSink struct {
	mu  sync.Mutex
	got []string
}

func startTCPSink(t *testing.T, addr string) *tcpSink {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &tcpSink{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 65535)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						s.mu.Lock()
						s.got = append(s.got, string(buf[:n]))
						s.mu.Unlock()
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *tcpSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// waitFor waits for a message that holds text.
func (s *tcpSink) waitFor(text string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		for _, m := range s.all() {
			if strings.Contains(m, text) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resolvConfServers returns the IPv4 name servers of /etc/resolv.conf.
func resolvConfServers() []string {
	data, _ := os.ReadFile("/etc/resolv.conf")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && ip.To4() != nil && !ip.IsLoopback() {
				out = append(out, f[1])
			}
		}
	}
	return out
}

// dnsRecorder answers every DNS query over UDP with NXDOMAIN, and records
// the names asked.
type dnsRecorder struct {
	mu    sync.Mutex
	asked []string
}

func startDNSRecorder(t *testing.T, servers []string) *dnsRecorder {
	t.Helper()
	d := &dnsRecorder{}
	for _, s := range append(servers, "127.0.0.53") {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(s, "53"))
		if err != nil {
			continue // 127.0.0.53 is only there on systemd hosts' resolv.conf
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if n < 12 {
					continue
				}
				d.mu.Lock()
				d.asked = append(d.asked, dnsName(buf[12:n]))
				d.mu.Unlock()
				res := append([]byte(nil), buf[:n]...)
				res[2] |= 0x80                  // a response
				res[3] = res[3]&0xf0 | 0x80 | 3 // recursion available, NXDOMAIN
				_, _ = pc.WriteTo(res, from)
			}
		}()
	}
	return d
}

func (d *dnsRecorder) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// dnsName reads the name a DNS question starts with.
func dnsName(q []byte) string {
	var labels []string
	for len(q) > 0 && q[0] != 0 && int(q[0]) < len(q) {
		labels = append(labels, string(q[1:1+q[0]]))
		q = q[1+q[0]:]
	}
	return strings.Join(labels, ".")
}

// TestAttackTCP is the full-size attack that found the dead TCP listener:
// about 20,000 idle connections (as many as the test's own limit on open
// files allows) against a proxy allowed 10,000 descriptors, first from one
// address, then from 200. It logs the numbers that docs/security.md
// quotes. It runs only with SWITCHBOARD_ATTACK_TCP=1 (make attack-tcp,
// which gives it a binary built without the race detector, for the memory
// figures).
func TestAttackTCP(t *testing.T) {
	if os.Getenv("SWITCHBOARD_ATTACK_TCP") == "" {
		t.Skip("the full-size attack runs with make attack-tcp")
	}
	const nofile = 10000
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit (util-linux) is not installed")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	attack := int(lim.Cur) - 200 // what the test itself needs besides
	if attack <= nofile {
		t.Fatalf("the test may open %d files, too few for an attack of more than %d", lim.Cur, nofile+200)
	}
	httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	cfg := testConfig() + fmt.Sprintf("\n[http]\nlisten = %q\n", httpAddr)
	p := startProxyUnder(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile)}, cfg, false)
	health := watchHealth("http://" + httpAddr + "/health")
	defer health.end()

	for _, sources := range []int{1, 200} {
		start := time.Now()
		var conns []net.Conn
		for i := 0; i < attack; i++ {
			from := "127.0.0.1"
			if sources > 1 {
				from = fmt.Sprintf("127.0.%d.%d", 1+i%sources/250, 1+i%sources%250)
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: time.Second}
			c, err := d.Dial("tcp4", p.TCP)
			if err != nil {
				continue
			}
			conns = append(conns, c)
		}
		dialled := time.Since(start)
		held := countHeld(conns)
		line, err := tcpOptions(p.TCP, callerIP)
		t.Logf("%d sources: %d connections made in %v, %d held by the proxy; proxy RSS %s; OPTIONS over TCP from another address: %q %v",
			sources, len(conns), dialled.Round(time.Millisecond), held, rss(p), line, err)
		// The header timeout closes what is held.
		closedAt := make(chan time.Duration, len(conns))
		for _, c := range conns {
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				_, _ = io.Copy(io.Discard, c)
				closedAt <- time.Since(start)
			}()
		}
		var last time.Duration
		for range conns {
			last = max(last, <-closedAt)
		}
		t.Logf("%d sources: every connection closed %v after the attack began", sources, last.Round(100*time.Millisecond))
		for _, c := range conns {
			c.Close()
		}
		if line, err := tcpOptions(p.TCP, proxyIP); err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
			t.Errorf("%d sources: TCP does not serve after the attack: %q, %v", sources, line, err)
		}
	}
	t.Logf("/health: %d of %d failed", health.failed.Load(), health.asked.Load())
	if health.failed.Load() > 0 {
		t.Errorf("/health failed during the attack (last: %v)", health.last.Load())
	}
}

// rss returns the proxy's resident memory, from /proc.
func rss(p *proxy) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
