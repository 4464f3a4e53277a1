package guard

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a guarded listener on loopback whose connections are read the
// way sipgo's stream transports read them: each read goes through Read, and
// a read that ends a message (an empty body, in these tests) counts as a
// whole message.
type server struct {
	g      *Guard
	ln     net.Listener
	mu     sync.Mutex
	closed map[string]bool // by the client's address, once the read ends
	n      int             // connections accepted
}

func newServer(t *testing.T, l Limits, log *slog.Logger) *server {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{g: New(l, log), closed: map[string]bool{}}
	s.ln = s.g.Listen(ln)
	t.Cleanup(func() { s.ln.Close() })
	go s.serve()
	return s
}

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
		go func() {
			remote := netip.MustParseAddrPort(c.RemoteAddr().String())
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					break
				}
				s.g.Read(remote, buf[:n])
				if bytes.Contains(buf[:n], []byte("Content-Length: 0\r\n\r\n")) {
					s.g.Delivered(remote)
				}
			}
			c.Close()
			s.mu.Lock()
			s.closed[remote.String()] = true
			s.mu.Unlock()
		}()
	}
}

func (s *server) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *server) isClosed(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed[c.LocalAddr().String()]
}

// dial connects from the loopback address from.
func (s *server) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp4", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused reports whether the server closed c without reading from it,
// waiting up to a second for it.
func refused(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCaps(t *testing.T) {
	tests := []struct {
		limits Limits
		from   []string // one connection each, in order
		want   []bool   // whether each is admitted
	}{
		{Limits{}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, []bool{true, true, true}},
		{Limits{MaxConnections: 2}, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, []bool{true, true, false}},
		{Limits{MaxPerSource: 2}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"}, []bool{true, true, false, true}},
		{Limits{MaxConnections: 3, MaxPerSource: 2}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.3"}, []bool{true, true, false, true, false}},
	}
	for i, tc := range tests {
		s := newServer(t, tc.limits, nil)
		admitted := 0
		for j, from := range tc.from {
			c := s.dial(t, from)
			if tc.want[j] {
				admitted++
				waitFor(t, "accepted", 2*time.Second, func() bool { return s.accepted() == admitted })
				continue
			}
			if !refused(c) {
				t.Errorf("test %d: connection %d from %s not closed past the cap", i, j, from)
			}
		}
		if got := s.g.Open(); got != admitted {
			t.Errorf("test %d: %d connections counted, want %d", i, got, admitted)
		}
	}
}

// TestCapFreed checks that a closed connection makes room for another.
func TestCapFreed(t *testing.T) {
	s := newServer(t, Limits{MaxPerSource: 1}, nil)
	first := s.dial(t, "127.0.0.1")
	waitFor(t, "accepted", 2*time.Second, func() bool { return s.accepted() == 1 })
	if !refused(s.dial(t, "127.0.0.1")) {
		t.Fatal("a second connection from the source was admitted past the cap")
	}
	first.Close()
	waitFor(t, "the first connection released", 2*time.Second, func() bool { return s.g.Open() == 0 })
	s.dial(t, "127.0.0.1")
	waitFor(t, "a new connection accepted", 2*time.Second, func() bool { return s.accepted() == 2 })
}

func TestTimeouts(t *testing.T) {
	const header, idle = 300 * time.Millisecond, 600 * time.Millisecond
	msg := "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name  string
		bound bool
		// send runs on the client until stop is closed.
		send       func(c net.Conn, stop chan struct{})
		wantClosed bool
		within     time.Duration
	}{
		{"silent", false, func(net.Conn, chan struct{}) {}, true, header},
		{"keep-alives only", false, every(50*time.Millisecond, "\r\n\r\n"), true, header},
		{"one byte at a time", false, every(50*time.Millisecond, "O"), true, header},
		{"idle after a message", false, once(msg), true, header + idle},
		{"a message each header timeout", false, every(header/2, msg), false, 3 * idle},
		{"idle with a binding", true, once(msg), false, 3 * idle},
		{"idle with a binding taken back", true, once(msg), true, 2 * idle},
		{"keep-alives after a message", false, then(msg, every(50*time.Millisecond, "\r\n\r\n")), false, 3 * idle},
		{"a message cut by keep-alives", false, then("OPTIONS sip:a@b SIP/2.0\r\n", every(50*time.Millisecond, "\r\n")), true, header},
	}
	for _, tc := range tests {
		s := newServer(t, Limits{HeaderTimeout: header, IdleTimeout: idle}, nil)
		c := s.dial(t, "127.0.0.1")
		remote := netip.MustParseAddrPort(c.LocalAddr().String())
		if tc.bound {
			// Bound before its first message, so that the Read after it
			// waits under the binding's deadline.
			waitFor(t, tc.name+": accepted", time.Second, func() bool { return s.g.conn(remote) != nil })
			s.g.Bind("alice", map[netip.AddrPort]time.Time{remote: time.Now().Add(time.Hour)})
		}
		stop := make(chan struct{})
		go tc.send(c, stop)
		if tc.bound && tc.wantClosed {
			waitFor(t, tc.name+": delivered", time.Second, func() bool { return s.g.conn(remote).last.Load() != 0 })
			time.Sleep(50 * time.Millisecond) // for the Read to wait again
			s.g.Bind("alice", nil)
		}
		if tc.wantClosed {
			waitFor(t, tc.name+": closed", tc.within+time.Second, func() bool { return s.isClosed(c) })
		} else {
			time.Sleep(tc.within) // the connection must outlive this
			if s.isClosed(c) {
				t.Errorf("%s: closed", tc.name)
			}
		}
		close(stop)
	}
}

func every(d time.Duration, data string) func(net.Conn, chan struct{}) {
	return func(c net.Conn, stop chan struct{}) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			if _, err := c.Write([]byte(data)); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}
}

// then sends data, then what next sends.
func then(data string, next func(net.Conn, chan struct{})) func(net.Conn, chan struct{}) {
	return func(c net.Conn, stop chan struct{}) {
		if _, err := c.Write([]byte(data)); err == nil {
			next(c, stop)
		}
	}
}

func once(data string) func(net.Conn, chan struct{}) {
	return func(c net.Conn, _ chan struct{}) { _, _ = c.Write([]byte(data)) }
}

// failing is a listener whose Accept fails n times before it accepts.
type failing struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (f *failing) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.n > 0 {
		f.n--
		f.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func TestAcceptRetries(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Only Accept logs, and on the test's goroutine: a plain buffer will do.
	var logged bytes.Buffer
	g := New(Limits{}, slog.New(slog.NewTextHandler(&logged, nil)))
	gl := g.Listen(&failing{Listener: ln, n: 5})
	defer gl.Close()
	// The client holds its connection until the test has accepted it.
	accepted := make(chan struct{})
	go func() {
		if c, err := net.Dial("tcp4", ln.Addr().String()); err == nil {
			defer c.Close()
			<-accepted
		}
	}()
	c, err := gl.Accept()
	close(accepted)
	if err != nil {
		t.Fatalf("Accept returned %v: an accept error stopped the listener", err)
	}
	c.Close()
	log := logged.String()
	if n := strings.Count(log, "accept failed"); n != 1 {
		t.Errorf("%d lines for a burst of failed accepts, want 1:\n%s", n, log)
	}
	if !strings.Contains(log, "failed_accepts=5") {
		t.Errorf("the log does not count the failed accepts:\n%s", log)
	}
	done := make(chan error)
	go func() { _, err := gl.Accept(); done <- err }()
	gl.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close returned %v, want net.ErrClosed", err)
	}
}

func TestDefaultCaps(t *testing.T) {
	tests := []struct {
		nofile           uint64
		total, perSource int
	}{
		{1024, 461, 100},
		{256, 96, 48},
		{100, 18, 9},
		{64, 1, 1},
		{9000, 4050, 100},
		{65536, 8192, 100},
		{1 << 20, 8192, 100},
	}
	for i, tc := range tests {
		total, per := DefaultCaps(tc.nofile)
		if total != tc.total || per != tc.perSource {
			t.Errorf("test %d: DefaultCaps(%d) = %d, %d; want %d, %d", i, tc.nofile, total, per, tc.total, tc.perSource)
		}
	}
}

// accept returns a Guard with the limits l and a connection it accepted
// from loopback, whose client end is closed when the test ends.
func accept(t *testing.T, l Limits) (*Guard, net.Conn) {
	t.Helper()
	g := New(l, slog.New(slog.DiscardHandler))
	_, sc := connect(t, g)
	return g, sc
}

// connect accepts a connection on a listener of g, and returns both ends.
func connect(t *testing.T, g *Guard) (client, sc net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := g.Listen(ln)
	t.Cleanup(func() { gl.Close() })
	client, err = net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err = gl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, sc
}

// TestWriteTimeout is a peer that never reads: a write to it fails within
// the write timeout, however many writes wait behind it, and the
// connection is closed.
func TestWriteTimeout(t *testing.T) {
	defer func(d time.Duration) { writeTimeout = d }(writeTimeout)
	writeTimeout = 200 * time.Millisecond
	g, sc := accept(t, Limits{})
	done := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer sc.Close()
	defer close(stop)
	wg.Go(func() {
		// More responses, each written as sipgo does: its deadline set,
		// then the write.
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			wg.Go(func() {
				_ = sc.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = sc.Write([]byte("SIP/2.0 200 OK\r\n\r\n"))
			})
		}
	})
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := sc.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write failed with %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		sc.Close()
		t.Fatal("a write to a peer that does not read still blocks after 5s")
	}
	waitFor(t, "closed", time.Second, func() bool { return g.Open() == 0 })
}

// TestBind is a connection that holds the bindings of two AORs (a phone
// with two lines, an SBC): the de-registration of one keeps the other's
// protection, and a binding that moves to another connection takes its
// protection along.
func TestBind(t *testing.T) {
	s := newServer(t, Limits{}, nil)
	var remotes []netip.AddrPort
	for range 2 {
		c := s.dial(t, "127.0.0.1")
		remote := netip.MustParseAddrPort(c.LocalAddr().String())
		waitFor(t, "accepted", 2*time.Second, func() bool { return s.g.conn(remote) != nil })
		remotes = append(remotes, remote)
	}
	c1, c2 := remotes[0], remotes[1]
	now := time.Now()
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	steps := []struct {
		aor   string
		until map[netip.AddrPort]time.Time
		want  [2]time.Time // bound of c1 and c2 afterwards
	}{
		{"alice", map[netip.AddrPort]time.Time{c1: at(1)}, [2]time.Time{at(1), {}}},
		{"bob", map[netip.AddrPort]time.Time{c1: at(2)}, [2]time.Time{at(2), {}}},
		{"alice", map[netip.AddrPort]time.Time{c1: at(3)}, [2]time.Time{at(3), {}}},
		{"alice", nil, [2]time.Time{at(2), {}}}, // alice de-registers
		{"alice", map[netip.AddrPort]time.Time{c1: at(1)}, [2]time.Time{at(2), {}}},
		{"bob", map[netip.AddrPort]time.Time{c2: at(4)}, [2]time.Time{at(1), at(4)}}, // bob moves
		{"alice", map[netip.AddrPort]time.Time{c1: at(1), c2: at(5)}, [2]time.Time{at(1), at(5)}},
		{"bob", nil, [2]time.Time{at(1), at(5)}},
		{"alice", nil, [2]time.Time{{}, {}}},
	}
	for i, st := range steps {
		s.g.Bind(st.aor, st.until)
		for j, remote := range remotes {
			var want int64
			if !st.want[j].IsZero() {
				want = st.want[j].UnixNano()
			}
			if got := s.g.conn(remote).bound.Load(); got != want {
				t.Errorf("step %d (%s): connection %d bound until %v, want %v", i, st.aor, j+1, time.Unix(0, got), st.want[j])
			}
		}
	}
}

// TestCloseTwice is a connection the Guard closed for a timeout, which
// its reader then closes: that second Close must not fail (sipgo logs
// it as a pool not cleaned up).
func TestCloseTwice(t *testing.T) {
	g, sc := accept(t, Limits{HeaderTimeout: 50 * time.Millisecond})
	if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Fatalf("read past the header timeout returned %v, want io.EOF", err)
	}
	for i := range 2 {
		if err := sc.Close(); err != nil {
			t.Errorf("Close %d after the timeout: %v", i+1, err)
		}
	}
	if n := g.Open(); n != 0 {
		t.Errorf("%d connections counted after Close", n)
	}
}

// TestOnClose checks who is told of a connection closing: the function
// set with OnClose, once, with the remote address, however the
// connection closed; not for a connection refused past a cap.
func TestOnClose(t *testing.T) {
	tests := []struct {
		what  string
		limit Limits
		end   func(t *testing.T, client, sc net.Conn)
	}{
		{"the peer closed it", Limits{}, func(t *testing.T, client, sc net.Conn) {
			client.Close()
			if _, err := sc.Read(make([]byte, 10)); err == nil {
				t.Fatal("read after the peer closed: no error")
			}
			_ = sc.Close()
		}},
		{"closed twice", Limits{}, func(t *testing.T, _, sc net.Conn) {
			_ = sc.Close()
			_ = sc.Close()
		}},
		{"the header timeout", Limits{HeaderTimeout: 20 * time.Millisecond}, func(t *testing.T, _, sc net.Conn) {
			if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
				t.Fatalf("read past the header timeout returned %v, want io.EOF", err)
			}
			_ = sc.Close()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			g := New(tc.limit, slog.New(slog.DiscardHandler))
			var mu sync.Mutex
			var told []netip.AddrPort
			g.OnClose(func(remote netip.AddrPort) {
				mu.Lock()
				told = append(told, remote)
				mu.Unlock()
			})
			client, sc := connect(t, g)
			tc.end(t, client, sc)
			mu.Lock()
			defer mu.Unlock()
			want := netip.MustParseAddrPort(client.LocalAddr().String())
			if len(told) != 1 || told[0] != want {
				t.Errorf("told %v, want [%v] once", told, want)
			}
		})
	}

	// A connection past a cap is refused, never counted: nothing to tell.
	s := newServer(t, Limits{MaxConnections: 1}, nil)
	var n int
	var mu sync.Mutex
	s.g.OnClose(func(netip.AddrPort) { mu.Lock(); n++; mu.Unlock() })
	s.dial(t, "127.0.0.1")
	waitFor(t, "the first connection accepted", time.Second, func() bool { return s.g.Open() == 1 })
	if c := s.dial(t, "127.0.0.1"); !refused(c) {
		t.Fatal("a connection past max_connections was not refused")
	}
	mu.Lock()
	defer mu.Unlock()
	if n != 0 {
		t.Errorf("told of %d closes for a refused connection, want none", n)
	}
}
