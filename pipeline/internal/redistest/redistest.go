// Package redistest starts a real redis-server (Debian's redis-server
// package) for tests, on a free loopback port in a folder of its own.
// Without redis-server the test fails, unless SWITCHBOARD_REDIS_OPTIONAL=1,
// which skips it.
package redistest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a redis-server that a test started.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// Start starts a redis-server without persistence on a free port, waits
// until it answers PING, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SWITCHBOARD_REDIS_OPTIONAL") == "1" {
			t.Skip("redis-server is not installed; skipped as SWITCHBOARD_REDIS_OPTIONAL=1")
		}
		t.Fatal("redis-server is not installed: the Redis store tests need a real Redis " +
			"(apt-get install redis-server, or make test-deps); set SWITCHBOARD_REDIS_OPTIONAL=1 to skip them")
	}
	srv := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	srv.Start()
	t.Cleanup(srv.Stop)
	return srv
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start starts the server on its port, again if it was stopped.
func (s *Server) Start() {
	s.t.Helper()
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", logFile)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for !Ping(s.Addr()) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			s.Stop()
			s.t.Fatalf("redis-server on port %d did not answer PING within 10s; its log:\n%s", s.port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server, if it runs.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Ping reports whether a Redis at addr answers PING.
func Ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// freePort returns a loopback TCP port that nothing listens on, below
// Linux's ephemeral range (32768 and up) and apart from the ports the
// end-to-end tests take: no outgoing connection takes it between this
// check and redis-server's bind, or while a test has stopped the server to
// start it again on the same port.
func freePort(t testing.TB) int {
	t.Helper()
	for range portSpan {
		port := portBase + int(nextPort.Add(1)%portSpan)
		if l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no free tcp port between %d and %d", portBase, portBase+portSpan)
	return 0
}

// The ports freePort hands out: portBase and the portSpan ports above it.
const (
	portBase = 14000
	portSpan = 6000
)

// nextPort is where freePort looks next, started at a random place so
// that test processes running at once look in different places.
var nextPort atomic.Int32

func init() { nextPort.Store(rand.Int32N(portSpan)) }
