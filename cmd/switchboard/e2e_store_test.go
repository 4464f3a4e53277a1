package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRegistrationSurvivesKill registers a phone, kills the proxy with
// SIGKILL at once after the 200, starts it again on the same bolt file, and
// calls the phone without it registering again.
func TestRegistrationSurvivesKill(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "switchboard.db")
	config := testConfig() + fmt.Sprintf("\n[store]\nbackend = \"bolt\"\npath = %q\n", db)
	first := startProxy(t, config)
	callee := startPhone(t, "uas.xml", calleeIP, "udp")
	registerPhone(t, first, "bob", callee)
	first.kill(t) // within milliseconds of the 200: sipp exits as soon as it has it

	second := startProxy(t, config)
	callFrom(t, second, "uac.xml", "udp", "-s", "bob").ExpectCalls(1)
	callee.ExpectCalls(1)
}

// TestRedisSharedRegistrations runs two proxies on one redis-server: a
// phone registered through A is called through B, a registration removed
// through B is gone on A, and a Redis that stops and starts again costs
// 503s while it is away, no crash, and no restart of the proxies.
func TestRedisSharedRegistrations(t *testing.T) {
	t.Parallel()
	port := storeRedis(t)
	config := testConfig() + fmt.Sprintf("\n[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:%d/0\"\nprefix = %q\n", port.port, "e2e:")
	a := startProxy(t, config)
	b := startProxy(t, config)

	callee := startPhone(t, "uas.xml", calleeIP, "udp")
	registerPhone(t, a, "bob", callee)
	callFrom(t, b, "uac.xml", "udp", "-s", "bob").ExpectCalls(1)
	callee.ExpectCalls(1)

	// Removed through B, gone on A: bob is known but offline (480).
	runSipp(t, b.UDP, "-sf", scenario(t, "unregister.xml"), "-i", calleeIP, "-s", "bob",
		"-key", "contact_port", strconv.Itoa(callee.Port)).ExpectCalls(1)
	callFrom(t, a, "uac_reject.xml", "udp", "-s", "bob", "-key", "reject_code", "480").ExpectCalls(1)

	// Redis goes away: a REGISTER gets 503, not a wrong 200.
	port.stop(t)
	runSipp(t, a.UDP, "-sf", scenario(t, "register_unavailable.xml"), "-i", calleeIP, "-s", "carol",
		"-key", "contact_port", "5999").ExpectCalls(1)
	if !a.logSays("location store unavailable", 5*time.Second) {
		t.Errorf("proxy A's log does not say the store is unavailable")
	}

	// Redis comes back on the same port: both proxies recover by themselves.
	port.start(t)
	callee2 := startPhone(t, "uas.xml", calleeIP, "udp")
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := runSipp(t, a.UDP, "-sf", scenario(t, "register.xml"), "-i", calleeIP, "-s", "dave",
			"-key", "contact_port", strconv.Itoa(callee2.Port))
		if r.Wait() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful REGISTER within 15 s of Redis coming back\n%s", r.Report())
		}
	}
	callFrom(t, b, "uac.xml", "udp", "-s", "dave").ExpectCalls(1)
	callee2.ExpectCalls(1)
}

// storeRedisServer is a redis-server the test starts and stops.
type storeRedisServer struct {
	port int
	dir  string
	cmd  *exec.Cmd
	// lab and host, when set, run it in that lab host's namespace.
	lab  *netLab
	host string
}

// storeRedis starts a redis-server on a free loopback port, stopped when
// the test ends.
func storeRedis(t *testing.T) *storeRedisServer {
	t.Helper()
	return storeRedisIn(t, nil, "")
}

// storeRedisIn is storeRedis in the namespace of the lab's host, or in the
// test's own when lab is nil.
func storeRedisIn(t *testing.T, lab *netLab, host string) *storeRedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("SWITCHBOARD_REDIS_OPTIONAL") == "1" {
			t.Skip("redis-server is not installed (SWITCHBOARD_REDIS_OPTIONAL=1)")
		}
		t.Fatal("redis-server is not installed: `make test` installs it (Debian package redis-server)")
	}
	s := &storeRedisServer{port: freePort(t, "tcp", "127.0.0.1"), dir: t.TempDir(), lab: lab, host: host}
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *storeRedisServer) start(t *testing.T) {
	t.Helper()
	argv := []string{"redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir}
	if s.lab != nil {
		argv = append(s.lab.under(s.host), argv...)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.dial()
		if err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer PING", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dial connects to the server, from its namespace.
func (s *storeRedisServer) dial() (net.Conn, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	if s.lab == nil {
		return net.DialTimeout("tcp", addr, time.Second)
	}
	return s.lab.dialTCP(s.host, "", addr)
}

func (s *storeRedisServer) stop(t *testing.T) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestTCPPhoneThroughPath: two proxies share a Redis; a phone registers
// over its own TCP connection with A, and a call placed through B reaches
// it through A (B sends along the binding's Path), over that connection.
func TestTCPPhoneThroughPath(t *testing.T) {
	t.Parallel()
	redis := storeRedis(t)
	config := strings.Replace(testConfig(), "use = \"registrar\"", "use = \"registrar\"\npath = true", 1) +
		fmt.Sprintf("\n[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:%d/0\"\nprefix = %q\n", redis.port, "path:")
	a := startProxy(t, config)
	b := startProxy(t, config)
	cid := fmt.Sprintf("tcp-path-%d@test", time.Now().UnixNano())
	phonePort := freePort(t, "tcp", calleeIP)
	phone := runSipp(t, a.TCP, "-sf", scenario(t, "tcp_phone.xml"), "-t", "t1", "-s", "bob", "-i", calleeIP,
		"-p", strconv.Itoa(phonePort), "-cid_str", cid)
	deadline := time.Now().Add(10 * time.Second)
	for len(phone.Received("SIP/2.0 200")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the phone did not register\n%s", phone.Report())
		}
		time.Sleep(20 * time.Millisecond)
	}
	callFrom(t, b, "uac.xml", "tcp", "-s", "bob", "-cid_str", cid).ExpectCalls(1)
	phone.ExpectCalls(1)
	invites := phone.Received("INVITE ")
	if len(invites) == 0 {
		t.Fatalf("the phone got no INVITE\n%s", phone.Report())
	}
	// Both proxies recorded their route: B, then A along the Path.
	rr := strings.Join(invites[0].Headers("Record-Route"), ",")
	if !strings.Contains(rr, a.TCP) || !strings.Contains(rr, b.TCP) {
		t.Errorf("Record-Route %q, want both %s (A) and %s (B)", rr, a.TCP, b.TCP)
	}
}
