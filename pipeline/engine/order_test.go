package engine

import (
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEngineKeepsOrder sends a burst of requests faster than one CPU
// handles them and checks they are answered in the order they were sent.
// The socket's reader yields once every yieldEvery datagrams it hands on,
// so the goroutines of the messages already read run first: a backlog
// waits in the kernel's queue, first in first out, instead of in the Go
// scheduler's (where the newest goroutine runs first and an overflow waits
// behind everything else). Without the yield the last request is answered
// first; with it, an answer is about two batches ahead at most. On one
// CPU, as here; with several, handlers also run in parallel and the order
// is looser. These are requests of different calls; within one call,
// TestCallOrder checks the order is kept.
func TestEngineKeepsOrder(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e := testEngine(t, 65535)
	// A pipeline of no stages: an OPTIONS to the proxy itself is
	// answered 200 by the engine.
	pc := e.testClient(t)
	if err := pc.(*net.UDPConn).SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	dst, _ := net.ResolveUDPAddr("udp4", e.testAddr("UDP"))
	const n = 150 // within the kernel's default receive buffer
	local := pc.LocalAddr().String()
	for i := 1; i <= n; i++ {
		// OPTIONS to the proxy itself: answered 200 by the engine.
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bK-order-%d\r\n"+
			"From: <sip:test@127.0.0.1>;tag=order\r\n"+
			"To: <sip:%s>\r\n"+
			"Call-ID: order-%d\r\n"+
			"CSeq: %d OPTIONS\r\n"+
			"Max-Forwards: 70\r\n"+
			"Content-Length: 0\r\n\r\n", dst, local, i, dst, i, i)
		if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 65535)
	var got []int
	for len(got) < n {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		for line := range strings.SplitSeq(string(buf[:m]), "\r\n") {
			if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
				seq, _ := strconv.Atoi(strings.Fields(v)[0])
				got = append(got, seq)
			}
		}
	}
	if len(got) < n*9/10 {
		t.Fatalf("%d answers to %d requests", len(got), n)
	}
	// inTurn finds the socket's share by the address sipgo reports; were
	// it not found, the reader would yield at every datagram instead.
	var handed uint64
	for _, r := range *e.shares.Load() {
		handed += r.handed.Load()
	}
	if handed < uint64(len(got)) {
		t.Errorf("the socket's share counted %d datagrams handed on, want %d or more", handed, len(got))
	}
	// A handler that blocks or is preempted lets the next messages
	// overtake it (these are different calls, which the per-call order
	// does not hold back): answers a few places early are scheduling on a
	// busy machine, an answer far ahead of its turn is a backlog served
	// newest first.
	ahead := 0
	for i, seq := range got {
		ahead = max(ahead, seq-(i+1))
	}
	if ahead > n/5 {
		t.Errorf("an answer came %d places ahead of its turn; CSeqs in the order answered: %v", ahead, got)
	}
}
