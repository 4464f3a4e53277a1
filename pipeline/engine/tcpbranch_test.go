package engine

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestTCPBranch checks that a branch over TCP reaches its own target while
// a phone holds a connection to the proxy's TCP socket: the branch leaves
// with no local address (forward.go: prepare), so sipgo dials it from a
// port of the kernel's. With the listener's address as Laddr, sipgo v1.7.3
// found the phone's connection under it (it pooled accepted connections
// by the listener's address too), and v1.7.4 would dial from the
// listening port, which is in use.
func TestTCPBranch(t *testing.T) {
	e := forwardingEngine(t, "", "")
	phone, err := net.Dial("tcp4", e.testAddr("TCP"))
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	phoneGot := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		if n, err := phone.Read(buf); err == nil {
			phoneGot <- buf[:n]
		}
	}()

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialedFrom := make(chan string, 1)
	done := make(chan struct{}) // closes the callee's connection
	defer func() {
		select {
		case <-done:
		default:
			close(done)
		}
	}()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		dialedFrom <- c.RemoteAddr().String()
		req, err := readStreamRequest(bufio.NewReader(c))
		if err != nil {
			t.Error(err)
			return
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.To().Params.Add("tag", "callee")
		_, _ = c.Write([]byte(res.String()))
		<-done
	}()

	caller := newPeer(t, "127.0.0.2", nil)
	req := caller.request(sip.OPTIONS, "sip:bob@"+ln.Addr().String()+";transport=tcp", "tcp-branch", 1)
	caller.send(e.testAddr("UDP"), req)
	if res := caller.response(req, 200, 3*time.Second); res == nil || res.StatusCode != 200 {
		t.Fatalf("answer %v, want 200 from the TCP callee", res)
	}
	if from := <-dialedFrom; from == e.testAddr("TCP") {
		t.Errorf("branch dialed from the listening socket %s", from)
	}
	select {
	case data := <-phoneGot:
		t.Errorf("the phone's connection got the branch:\n%s", data)
	default:
	}
	// Both connections closed, wait for sipgo's readers of them to end:
	// the next engine's New sets sipgo's globals they read.
	phone.Close()
	close(done)
	deadline := time.Now().Add(5 * time.Second)
	for e.guard.Open() > 0 || e.guard.Outbound() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in, %d out still open", e.guard.Open(), e.guard.Outbound())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readStreamRequest reads one request without a body from a stream.
func readStreamRequest(r *bufio.Reader) (*sip.Request, error) {
	var head bytes.Buffer
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		head.Write(line)
		if bytes.Equal(line, []byte("\r\n")) {
			break
		}
	}
	msg, err := sip.ParseMessage(head.Bytes())
	if err != nil {
		return nil, err
	}
	return msg.(*sip.Request), nil
}
