package engine

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// forkStage forks a request to the UDP addresses of its X-Fork header.
type forkStage struct{}

func (forkStage) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	h := ctx.Request.GetHeader("X-Fork")
	if h == nil {
		return pipeline.Continue, nil
	}
	for _, a := range strings.Split(h.Value(), ",") {
		u := sip.Uri{Scheme: "sip", User: "b", Host: "127.0.0.1"}
		a, tp, _ := strings.Cut(a, ";")
		if tp == "TCP" {
			// By its URI: a TCP destination without a connection is dropped.
			host, port, _ := net.SplitHostPort(a)
			u.Host = host
			u.Port, _ = strconv.Atoi(port)
			u.UriParams = sip.NewParams()
			u.UriParams.Add("transport", "tcp")
			ctx.Targets = append(ctx.Targets, pipeline.Target{URI: u})
			continue
		}
		ctx.Targets = append(ctx.Targets, pipeline.Target{URI: u, Destination: a, Transport: "UDP"})
	}
	return pipeline.Continue, nil
}

var registerFork = sync.OnceFunc(func() {
	registerDelay()
	pipeline.Register(pipeline.StageInfo{Name: "test_fork", Description: "test", New: func() pipeline.Stage { return new(forkStage) }})
})

// useFork is useDelay with the test_fork stage before forward.
func useFork(t *testing.T, e *Engine, delay string) {
	t.Helper()
	registerFork()
	useDelay(t, e, delay, "test_fork")
}

// TestCallOrderFork forks an INVITE to two callees: the first answers
// 180, the second 200 just after it. The 180 reached the proxy first, and
// is held 50 ms by a response stage: the caller must still get it before
// the 200 (the messages of one call leave in the order they arrived).
func TestCallOrderFork(t *testing.T) {
	e := testEngine(t, 65535)
	e.svc.Sockets = e.Sockets()
	useFork(t, e, "status = 180")
	proxy := e.testAddr("UDP")
	for i := range 3 {
		id := fmt.Sprintf("fork-order-%d", i)
		c := &call{id: id, transport: "UDP", callerTag: "caller-" + id, calleeT: "callee-" + id, seq: 1}
		c.caller = newWire(t, "UDP", proxy, false)
		a := newWire(t, "UDP", proxy, true)
		b := newWire(t, "UDP", proxy, true)
		c.callee = a
		inv := c.request("INVITE", false)
		inv = strings.Replace(inv, "Content-Length:", "X-Fork: "+a.addr()+","+b.addr()+"\r\nContent-Length:", 1)
		c.caller.send(inv)
		invA, _ := a.next().(*sip.Request)
		invB, _ := b.next().(*sip.Request)
		if invA == nil || invB == nil {
			t.Fatal("the INVITE was not forked to both callees")
		}
		// A's write returns before B's starts: the 180 is first in the
		// proxy's socket.
		a.send(c.answer(invA, 180, "Ringing"))
		b.send(c.answer(invB, 200, "OK"))
		got := []string{describe(c.caller.next())}
		select {
		case m := <-c.caller.in:
			got = append(got, describe(m))
		case <-time.After(time.Second):
		}
		if strings.Join(got, " ") != "180 200" {
			t.Fatalf("call %d: the caller got %v, want [180 200]", i, got)
		}
	}
}

// TestCancelRightAfterInvite sends an INVITE and its CANCEL back to back:
// the CANCEL arrived after the INVITE, so it must find it (200, not 481).
// The callee answers 487, or 200 crossing the proxy's CANCEL: over TCP
// sipgo often answers the CANCEL itself (200 and 487), and the 2xx that
// follows goes statelessly; the transaction must still leave the
// in-flight count.
func TestCancelRightAfterInvite(t *testing.T) {
	e := testEngine(t, 65535)
	e.svc.Sockets = e.Sockets()
	useFork(t, e, "status = 999")
	for _, code := range []int{487, 200} {
		for _, transport := range []string{"UDP", "TCP"} {
			t.Run(fmt.Sprintf("%s/callee %d", transport, code), func(t *testing.T) { cancelAfterInvite(t, e, transport, code) })
		}
	}
}

// cancelAfterInvite sends INVITEs each with its CANCEL right behind, the
// callee answering each INVITE it gets with code.
func cancelAfterInvite(t *testing.T, e *Engine, transport string, code int) {
	proxy := e.testAddr(transport)
	lost := 0
	const n = 50
	for i := range n {
		id := fmt.Sprintf("cancel-cross-%d-%s-%d", code, transport, i)
		c := &call{id: id, transport: transport, callerTag: "caller-" + id, calleeT: "callee-" + id, seq: 1}
		c.caller = newWire(t, transport, proxy, false)
		c.callee = newWire(t, transport, proxy, true)
		inv := c.request("INVITE", false)
		cancel := strings.Replace(strings.Replace(inv, "INVITE sip:", "CANCEL sip:", 1), " INVITE\r\n", " CANCEL\r\n", 1)
		c.caller.send(inv, cancel)
		// Wait for the CANCEL's answer, the INVITE's final response and
		// the end of the proxy's transactions in flight, answering with
		// code each INVITE the callee gets: when and whether it comes is
		// the proxy's. Over TCP sipgo may answer the CANCEL and send the
		// 487 itself; the caller here never ACKs, so a transaction left
		// in flight until sipgo's Timer H would hold a graceful stop.
		answered, ended := false, false
		tick := time.NewTicker(10 * time.Millisecond)
		deadline := time.After(5 * time.Second)
		for !answered || !ended || e.active.Load() > 0 {
			select {
			case m := <-c.caller.in:
				res, ok := m.(*sip.Response)
				switch {
				case !ok:
				case res.CSeq().MethodName == sip.CANCEL:
					if res.StatusCode != 200 {
						t.Logf("call %d: %d to the CANCEL", i, res.StatusCode)
						lost++
					}
					answered = true
				case res.StatusCode >= 200:
					ended = true
				}
			case m := <-c.callee.in:
				if r, ok := m.(*sip.Request); ok && r.IsInvite() {
					c.callee.send(c.answer(r, code, map[int]string{200: "OK", 487: "Request Terminated"}[code]))
				}
			case <-tick.C:
			case <-deadline:
				t.Fatalf("call %d: after 5 s, the CANCEL answered %v, the INVITE ended %v, %d transactions in flight", i, answered, ended, e.active.Load())
			}
		}
		tick.Stop()
	}
	if lost > 0 {
		t.Errorf("%d of %d CANCELs sent just after their INVITE got 481: they overtook it", lost, n)
	}
}

// blackhole is a TCP listener whose accept queue is full: a connect to it
// hangs (its SYNs are dropped), as one to a host that does not answer.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 4 { // fill the queue
		c, err := net.DialTimeout("tcp4", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue")
	return ""
}

// TestAckNotBehindOtherBranch forks an INVITE to a callee that answers
// 200 at once and to a TCP next hop whose connect hangs. The caller's ACK
// to the 200 must reach the callee at once: it waits for no other message
// of the call, only for a connect to another branch's next hop.
func TestAckNotBehindOtherBranch(t *testing.T) {
	e := testEngine(t, 65535)
	e.svc.Sockets = e.Sockets()
	useFork(t, e, "status = 999")
	hole := blackhole(t)
	proxy := e.testAddr("UDP")
	id := "ack-behind-branch"
	c := &call{id: id, transport: "UDP", callerTag: "caller-" + id, calleeT: "callee-" + id, seq: 1}
	c.caller = newWire(t, "UDP", proxy, false)
	a := newWire(t, "UDP", proxy, true)
	c.callee = a
	inv := c.request("INVITE", false)
	inv = strings.Replace(inv, "Content-Length:", "X-Fork: "+a.addr()+","+hole+";TCP\r\nContent-Length:", 1)
	c.caller.send(inv)
	invA, _ := a.next().(*sip.Request)
	if invA == nil {
		t.Fatal("no INVITE at the callee")
	}
	// The proxy sent A's branch first and now dials the other's next hop.
	a.send(c.answer(invA, 200, "OK"))
	ok, _ := c.caller.next().(*sip.Response)
	if ok == nil || ok.StatusCode != 200 {
		t.Fatalf("caller got %v, want 200", ok)
	}
	sent := time.Now()
	c.caller.send(c.request("ACK", false))
	for {
		if r, _ := a.next().(*sip.Request); r != nil && r.IsAck() {
			break
		}
	}
	if d := time.Since(sent); d > time.Second {
		t.Errorf("the ACK reached the callee %v after the caller sent it: it waited for the other branch's connect", d.Round(time.Millisecond))
	}
}
