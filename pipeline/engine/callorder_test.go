package engine

import (
	"bufio"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
)

// delayStage is a test stage that holds the request of one method, or the
// response of one status code, for 50 ms: what a stage waiting on DNS or a
// store does to the first message of a pair.
type delayStage struct {
	Method string `toml:"method"`
	Status int    `toml:"status"`
}

const stageDelay = 50 * time.Millisecond

func (s *delayStage) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	if string(ctx.Request.Method) == s.Method {
		time.Sleep(stageDelay)
	}
	return pipeline.Continue, nil
}

func (s *delayStage) ServeResponse(ctx *pipeline.ResponseContext) error {
	if ctx.Response.StatusCode == s.Status && !ctx.Local {
		time.Sleep(stageDelay)
	}
	return nil
}

var registerDelay = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "test_delay", Description: "test", New: func() pipeline.Stage { return new(delayStage) }})
})

// wire is a test phone's socket, UDP or TCP, that sends SIP text and reads
// whole messages in the order they arrived.
type wire struct {
	t         *testing.T
	transport string // "UDP" or "TCP"
	udp       *net.UDPConn
	tcp       net.Conn // the caller's connection, or the callee's accepted one
	ln        net.Listener
	in        chan sip.Message
	proxy     string
	invited   atomic.Bool // an INVITE arrived: the next ones are re-INVITEs
}

// newWire opens a phone's socket on 127.0.0.1. A TCP callee listens; a
// TCP caller connects to the proxy.
func newWire(t *testing.T, transport, proxy string, callee bool) *wire {
	t.Helper()
	w := &wire{t: t, transport: transport, in: make(chan sip.Message, 64), proxy: proxy}
	switch {
	case transport == "UDP":
		c := listenUDP(t, "127.0.0.1")
		w.udp = c
		serveUDP(t, c, func(data []byte, from *net.UDPAddr) {
			if msg, err := sip.ParseMessage(append([]byte(nil), data...)); err == nil {
				w.received(msg, func(b []byte) { _, _ = c.WriteToUDP(b, from) })
			}
		})
	case callee:
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w.ln = ln
		t.Cleanup(func() { ln.Close() })
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			accepted <- c
			w.readStream(c)
		}()
		w.tcp = &lazyConn{ready: accepted}
	default:
		c, err := net.Dial("tcp4", proxy)
		if err != nil {
			t.Fatal(err)
		}
		w.tcp = c
		t.Cleanup(func() { c.Close() })
		go w.readStream(c)
	}
	return w
}

// lazyConn is a callee's TCP connection, accepted when the proxy first
// connects.
type lazyConn struct {
	net.Conn
	ready chan net.Conn
}

func (c *lazyConn) Write(b []byte) (int, error) {
	if c.Conn == nil {
		c.Conn = <-c.ready
	}
	return c.Conn.Write(b)
}

func (w *wire) readStream(c net.Conn) {
	readMessages(c, func(msg sip.Message) {
		w.received(msg, func(b []byte) { _, _ = c.Write(b) })
	})
}

// readMessages hands each SIP message of a stream (headers, then
// Content-Length bytes) to each, until the stream ends; keep-alives
// between messages are skipped, and a message that does not parse too.
func readMessages(c io.Reader, each func(sip.Message)) {
	r := bufio.NewReader(c)
	for {
		var head strings.Builder
		length := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" && head.Len() == 0 {
				continue // keepalive
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if msg, err := sip.ParseMessage(append([]byte(head.String()), body...)); err == nil {
			each(msg)
		}
	}
}

// received hands msg to the test, after answering 200 to a request that
// the test does not answer itself (all but an ACK, a REFER and the first
// INVITE), so that no transaction is left open.
func (w *wire) received(msg sip.Message, reply func([]byte)) {
	if req, ok := msg.(*sip.Request); ok && !req.IsAck() && req.Method != sip.REFER && (!req.IsInvite() || w.invited.Swap(true)) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		reply([]byte(res.String()))
	}
	w.in <- msg
}

// addr is the phone's address as its Via and Contact name it.
func (w *wire) addr() string {
	if w.udp != nil {
		return w.udp.LocalAddr().String()
	}
	if w.ln != nil {
		return w.ln.Addr().String()
	}
	return w.tcp.LocalAddr().String()
}

// send writes msgs back to back: one TCP write, or one datagram each.
func (w *wire) send(msgs ...string) {
	w.t.Helper()
	if w.udp != nil {
		dst, _ := net.ResolveUDPAddr("udp4", w.proxy)
		for _, m := range msgs {
			if _, err := w.udp.WriteToUDP([]byte(m), dst); err != nil {
				w.t.Fatal(err)
			}
		}
		return
	}
	if _, err := w.tcp.Write([]byte(strings.Join(msgs, ""))); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next message that is not a 100 Trying.
func (w *wire) next() sip.Message {
	w.t.Helper()
	for {
		select {
		case m := <-w.in:
			if res, ok := m.(*sip.Response); ok && res.StatusCode == 100 {
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			w.t.Fatal("no message within 5s")
			return nil
		}
	}
}

// call is one call between a caller and a callee wire through the proxy.
type call struct {
	id                 string
	caller, callee     *wire
	invite             *sip.Request // as the callee received it
	transport          string
	callerTag, calleeT string
	seq                int
}

func (c *call) uri(w *wire) string {
	return fmt.Sprintf("sip:%s;transport=%s", w.addr(), strings.ToLower(c.transport))
}

// request is a request from the caller (or, with fromCallee, the callee)
// within the call, or the INVITE that starts it.
func (c *call) request(method string, fromCallee bool) string {
	from, to := c.caller, c.callee
	fromTag, toTag := c.callerTag, c.calleeT
	seq := c.seq
	if fromCallee {
		from, to = c.callee, c.caller
		fromTag, toTag = c.calleeT, c.callerTag
		seq = 100 + c.seq
	}
	c.seq++
	if method == "ACK" {
		seq = 1
	}
	toParam := ""
	if toTag != "" {
		toParam = ";tag=" + toTag
	}
	extra := ""
	if method == "REFER" {
		extra = "Refer-To: <sip:carol@127.0.0.1>\r\n"
	}
	if method == "NOTIFY" {
		extra = "Event: refer\r\nSubscription-State: active;expires=60\r\n"
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK-%s-%s-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:a@127.0.0.1>;tag=%s\r\n"+
		"To: <sip:b@127.0.0.1>%s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d %s\r\n"+
		"Contact: <%s>\r\n"+
		"%s"+
		"Content-Length: 0\r\n\r\n",
		method, c.uri(to), c.transport, from.addr(), c.id, method, seq, fromTag, toParam, c.id, seq, method, c.uri(from), extra)
}

// answer is the callee's (or caller's) response to req.
func (c *call) answer(req *sip.Request, code int, reason string) string {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", c.calleeT)
	}
	return res.String()
}

// startCall runs an INVITE to the callee and returns with it received
// there, unanswered.
func startCall(t *testing.T, transport, proxy, id string) *call {
	t.Helper()
	c := &call{id: id, transport: transport, callerTag: "caller-" + id, calleeT: "callee-" + id, seq: 1}
	c.callee = newWire(t, transport, proxy, true)
	c.caller = newWire(t, transport, proxy, false)
	c.caller.send(c.request("INVITE", false))
	m := c.callee.next()
	inv, ok := m.(*sip.Request)
	if !ok || !inv.IsInvite() {
		t.Fatalf("callee got %v, want the INVITE", m)
	}
	c.invite = inv
	return c
}

// answered runs a call up to the caller's 200.
func answered(t *testing.T, transport, proxy, id string) *call {
	t.Helper()
	c := startCall(t, transport, proxy, id)
	c.callee.send(c.answer(c.invite, 200, "OK"))
	if res, ok := c.caller.next().(*sip.Response); !ok || res.StatusCode != 200 {
		t.Fatalf("caller got %v, want 200", res)
	}
	return c
}

func describe(m sip.Message) string {
	switch m := m.(type) {
	case *sip.Response:
		return strconv.Itoa(m.StatusCode)
	case *sip.Request:
		return string(m.Method)
	}
	return "?"
}

// useDelay makes e's pipeline one that forwards every request by its
// Request-URI, behind a test_delay stage with the given keys and the
// stages named in between (each without keys).
func useDelay(t *testing.T, e *Engine, delay string, between ...string) {
	t.Helper()
	registerDelay()
	toml := "[server]\ndomains = [\"example.org\"]\ntrusted_sources = [\"127.0.0.0/8\"]\n" +
		"[[stage]]\nuse = \"test_delay\"\n" + delay + "\n"
	for _, name := range between {
		toml += "[[stage]]\nuse = \"" + name + "\"\n"
	}
	cfg, err := config.Parse("test.toml", []byte(toml+"[[stage]]\nuse = \"forward\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(cfg, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.current.Store(p)
}

// TestCallOrder sends the messages of one call back to back (one TCP
// write, or datagrams one after the other) while a stage holds the first
// for 50 ms, and checks that the proxy relays them in the order they
// arrived, losing none.
func TestCallOrder(t *testing.T) {
	tests := []struct {
		name  string
		delay string // the test_delay stage's keys
		// run plays the pair and returns what the receiving phone got,
		// in order.
		run  func(t *testing.T, transport, proxy, id string) []string
		want []string
	}{
		{
			name:  "180 then 200",
			delay: "status = 180",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := startCall(t, transport, proxy, id)
				c.callee.send(c.answer(c.invite, 180, "Ringing"), c.answer(c.invite, 200, "OK"))
				return []string{describe(c.caller.next()), describe(c.caller.next())}
			},
			want: []string{"180", "200"},
		},
		{
			name:  "183 then 200",
			delay: "status = 183",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := startCall(t, transport, proxy, id)
				c.callee.send(c.answer(c.invite, 183, "Session Progress"), c.answer(c.invite, 200, "OK"))
				return []string{describe(c.caller.next()), describe(c.caller.next())}
			},
			want: []string{"183", "200"},
		},
		{
			name:  "several 18x then 200",
			delay: "status = 180",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := startCall(t, transport, proxy, id)
				c.callee.send(c.answer(c.invite, 180, "Ringing"), c.answer(c.invite, 183, "Session Progress"),
					c.answer(c.invite, 181, "Call Is Being Forwarded"), c.answer(c.invite, 200, "OK"))
				var got []string
				for range 4 {
					got = append(got, describe(c.caller.next()))
				}
				return got
			},
			want: []string{"180", "183", "181", "200"},
		},
		{
			name:  "ACK then BYE",
			delay: `method = "ACK"`,
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := answered(t, transport, proxy, id)
				c.caller.send(c.request("ACK", false), c.request("BYE", false))
				return []string{describe(c.callee.next()), describe(c.callee.next())}
			},
			want: []string{"ACK", "BYE"},
		},
		{
			name:  "ACK then re-INVITE",
			delay: `method = "ACK"`,
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := answered(t, transport, proxy, id)
				c.caller.send(c.request("ACK", false), c.request("INVITE", false))
				return []string{describe(c.callee.next()), describe(c.callee.next())}
			},
			want: []string{"ACK", "INVITE"},
		},
		{
			name:  "202 then NOTIFY",
			delay: "status = 202",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := answered(t, transport, proxy, id)
				c.caller.send(c.request("ACK", false), c.request("REFER", false))
				var refer *sip.Request
				for refer == nil {
					if r, ok := c.callee.next().(*sip.Request); ok && r.Method == sip.REFER {
						refer = r
					}
				}
				c.callee.send(c.answer(refer, 202, "Accepted"), c.request("NOTIFY", true))
				return []string{describe(c.caller.next()), describe(c.caller.next())}
			},
			want: []string{"202", "NOTIFY"},
		},
		{
			name:  "200 then NOTIFY",
			delay: "status = 200",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := startCall(t, transport, proxy, id)
				c.callee.send(c.answer(c.invite, 200, "OK"), c.request("NOTIFY", true))
				return []string{describe(c.caller.next()), describe(c.caller.next())}
			},
			want: []string{"200", "NOTIFY"},
		},
		{
			// The re-INVITE's turn ends once it is sent, not at its
			// final response: the BYE does not wait for the callee.
			name:  "re-INVITE then BYE",
			delay: `method = "INVITE"`,
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := answered(t, transport, proxy, id)
				c.caller.send(c.request("ACK", false), c.request("INVITE", false), c.request("BYE", false))
				return []string{describe(c.callee.next()), describe(c.callee.next()), describe(c.callee.next())}
			},
			want: []string{"ACK", "INVITE", "BYE"},
		},
		{
			// The 180 comes while the 200 is in the response stages:
			// it has a turn, but sipgo's transaction, past its 2xx,
			// never passes it up. Its turn ends when the branch closes,
			// right after the 200, and holds neither the ACK nor the
			// BYE.
			name:  "200 then a late 180 then ACK and BYE",
			delay: "status = 200",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := startCall(t, transport, proxy, id)
				c.callee.send(c.answer(c.invite, 200, "OK"), c.answer(c.invite, 180, "Ringing"))
				got := []string{describe(c.caller.next())}
				c.caller.send(c.request("ACK", false), c.request("BYE", false))
				return append(got, describe(c.callee.next()), describe(c.callee.next()))
			},
			want: []string{"200", "ACK", "BYE"},
		},
		{
			// The 200 again while the first is in the response stages:
			// sipgo hands the copy to OnRetransmission, not to the
			// branch, whose close ends its turn.
			name:  "200 twice then ACK and BYE",
			delay: "status = 200",
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := startCall(t, transport, proxy, id)
				ok := c.answer(c.invite, 200, "OK")
				c.callee.send(ok, ok)
				got := []string{describe(c.caller.next())}
				c.caller.send(c.request("ACK", false), c.request("BYE", false))
				return append(got, describe(c.callee.next()), describe(c.callee.next()))
			},
			want: []string{"200", "ACK", "BYE"},
		},
		{
			// Causal: the 200 cannot exist before the BYE left. The case
			// checks the 200 is still relayed when the BYE was held.
			name:  "BYE then its 200",
			delay: `method = "BYE"`,
			run: func(t *testing.T, transport, proxy, id string) []string {
				c := answered(t, transport, proxy, id)
				c.caller.send(c.request("ACK", false), c.request("BYE", false))
				var bye *sip.Request
				for bye == nil {
					if r, ok := c.callee.next().(*sip.Request); ok && r.Method == sip.BYE {
						bye = r
					}
				}
				c.callee.send(c.answer(bye, 200, "OK"))
				return []string{describe(c.caller.next())}
			},
			want: []string{"200"},
		},
	}
	// One engine for every case, since a new one would reset sipgo's
	// process-wide settings under the last one's connections.
	e := testEngine(t, 65535)
	e.svc.Sockets = e.Sockets()
	for _, transport := range []string{"UDP", "TCP"} {
		for _, tc := range tests {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				useDelay(t, e, tc.delay)
				proxy := e.testAddr(transport)
				// The responses' race inside the proxy is lost or won by
				// the scheduler: a few calls make it show.
				for i := range 5 {
					id := fmt.Sprintf("%s-%d", strings.ReplaceAll(tc.name, " ", "-"), i)
					got := tc.run(t, transport, proxy, id)
					if strings.Join(got, " ") != strings.Join(tc.want, " ") {
						t.Fatalf("call %d: got %v, want %v", i, got, tc.want)
					}
				}
			})
		}
	}
}

// TestCallOrderTurns checks the turns callOrder gives: a retransmission
// and a CANCEL get none, a request waits for the earlier messages of its
// call and for no other call's, and a request sipgo never handed over
// stops holding the others back.
func TestCallOrderTurns(t *testing.T) {
	req := func(method, callID, branch string) *sip.Request {
		msg, err := sip.ParseMessage([]byte(fmt.Sprintf("%s sip:b@127.0.0.1 SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%s\r\n"+
			"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\n"+
			"Call-ID: %s\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n", method, branch, callID, method)))
		if err != nil {
			t.Fatal(err)
		}
		return msg.(*sip.Request)
	}
	o := newCallOrder()
	key := func(r *sip.Request) uint64 { k, _ := o.txKey(r); return k }
	waits := func(o *callOrder, tn *turn) bool {
		done := make(chan struct{})
		go func() { o.await(tn); close(done) }()
		select {
		case <-done:
			return false
		case <-time.After(100 * time.Millisecond):
			return true
		}
	}

	ack, bye, other := req("ACK", "c1", "ack"), req("BYE", "c1", "bye"), req("BYE", "c2", "bye2")
	for _, r := range []*sip.Request{ack, bye, req("BYE", "c1", "bye"), req("CANCEL", "c1", "bye"), other} {
		o.arrivedRequest(r)
	}
	if n := len(o.shard("c1").calls["c1"]); n != 2 {
		t.Fatalf("call c1 has %d turns, want 2: a retransmission and a CANCEL get none", n)
	}
	ackTurn := o.enter(ack, key(ack))
	byeTurn := o.enter(bye, key(bye))
	otherTurn := o.enter(other, key(other))
	if !waits(o, byeTurn) {
		t.Error("the BYE did not wait for the ACK before it")
	}
	if waits(o, otherTurn) {
		t.Error("another call's BYE waited")
	}
	o.end(ackTurn)
	if waits(o, byeTurn) {
		t.Error("the BYE waits after the ACK left")
	}
	o.end(byeTurn)
	o.ended(bye, key(bye))
	if _, held := o.shard("c1").requests[key(bye)]; held {
		t.Error("the BYE's key is kept after its transaction ended")
	}

	// A request that never reached the engine holds a later one back for
	// enterTimeout after its arrival at most, and is swept after 64*T1.
	lost, next := req("INFO", "c3", "lost"), req("INFO", "c3", "next")
	o.arrivedRequest(lost)
	o.arrivedRequest(next)
	nextTurn := o.enter(next, key(next))
	o.shard("c3").calls["c3"][0].arrived = time.Now().Add(-enterTimeout)
	if waits(o, nextTurn) {
		t.Error("a request waits for one sipgo never handed over, past enterTimeout")
	}
	o.sweep(time.Now().Add(64 * sip.T1))
	if n := len(o.shard("c3").calls["c3"]); n != 1 {
		t.Errorf("call c3 has %d turns after the sweep, want 1", n)
	}
}

// TestResponseNotBehindBlockedRequest keeps a request of a call in the
// stages, as a stage waiting on DNS or a store does, and checks that a
// response of the same call that arrived after it still leaves at once,
// and the request after it is released.
func TestResponseNotBehindBlockedRequest(t *testing.T) {
	registerCoreStages()
	e := testEngine(t, 65535)
	e.svc.Sockets = e.Sockets()
	useDelay(t, e, "", "core_hold")
	for _, transport := range []string{"UDP", "TCP"} {
		t.Run(transport, func(t *testing.T) {
			id := "blocked-" + transport
			c := startCall(t, transport, e.testAddr(transport), id)
			release := make(chan struct{})
			held.Store(id, release)
			defer held.Delete(id)
			c.caller.send(c.request("MESSAGE", false))
			// The MESSAGE is in the stages (the INVITE and it are in
			// flight) before the 200 is sent.
			deadline := time.Now().Add(5 * time.Second)
			for e.InFlight() < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the MESSAGE never reached the stages")
				}
				time.Sleep(time.Millisecond)
			}
			c.callee.send(c.answer(c.invite, 200, "OK"))
			if got := describe(c.caller.next()); got != "200" {
				t.Fatalf("caller got %s, want the 200 while the MESSAGE is held", got)
			}
			close(release)
			if got := describe(c.callee.next()); got != "MESSAGE" {
				t.Fatalf("callee got %s, want the MESSAGE once released", got)
			}
		})
	}
}

// TestTxKeyHash checks that txKeyHash hashes the key sipgo gives the
// request's server transaction.
func TestTxKeyHash(t *testing.T) {
	tests := []struct{ method, via string }{
		{"INVITE", "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1"},
		{"ACK", "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1"},
		{"BYE", "SIP/2.0/TCP phone.example.org;branch=z9hG4bK-2"},
		{"OPTIONS", "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK-3;rport"},
		{"INVITE", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"}, // no more than the cookie: RFC 2543
		{"INVITE", "SIP/2.0/UDP 192.0.2.1:5060;branch=1234"},    // RFC 2543
		{"INVITE", "SIP/2.0/UDP 192.0.2.1:5060"},                // no branch
	}
	seed := maphash.MakeSeed()
	for i, tc := range tests {
		msg, err := sip.ParseMessage([]byte(tc.method + " sip:b@example.org SIP/2.0\r\nVia: " + tc.via + "\r\n" +
			"From: <sip:a@example.org>;tag=a\r\nTo: <sip:b@example.org>\r\nCall-ID: c\r\nCSeq: 1 " + tc.method + "\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		req := msg.(*sip.Request)
		key, err := sip.ServerTxKeyMake(req)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if got, ok := txKeyHash(seed, req); !ok || got != maphash.String(seed, key) {
			t.Errorf("test %d: txKeyHash = %d, %v; the hash of %q is %d", i, got, ok, key, maphash.String(seed, key))
		}
	}
}

// seenStage is a test stage that notes the methods of the requests it
// sees, by Call-ID, in the order it sees them.
type seenStage struct{}

var (
	seenMu sync.Mutex
	seen   = map[string][]string{}
)

func (seenStage) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	seenMu.Lock()
	defer seenMu.Unlock()
	id := ctx.Request.CallID().Value()
	seen[id] = append(seen[id], string(ctx.Request.Method))
	return pipeline.Continue, nil
}

var registerSeen = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "test_seen", Description: "test", New: func() pipeline.Stage { return new(seenStage) }})
})

// TestCallOrderStages is TestCallOrder's pairs of requests, with a stage
// after the one that holds the first: it must see them in the order they
// arrived too, as the call log does (an ACK's stages run after the BYE's
// would log the call ended before its last ACK).
func TestCallOrderStages(t *testing.T) {
	e := testEngine(t, 65535)
	e.svc.Sockets = e.Sockets()
	registerSeen()
	seenMu.Lock()
	clear(seen)
	seenMu.Unlock()
	useDelay(t, e, `method = "ACK"`, "test_seen")
	for _, transport := range []string{"UDP", "TCP"} {
		for _, second := range []string{"BYE", "INVITE"} {
			t.Run(transport+"/ACK then "+second, func(t *testing.T) {
				proxy := e.testAddr(transport)
				for i := range 5 {
					id := fmt.Sprintf("stages-%s-%s-%d", transport, second, i)
					c := answered(t, transport, proxy, id)
					c.caller.send(c.request("ACK", false), c.request(second, false))
					got := []string{describe(c.callee.next()), describe(c.callee.next())}
					if strings.Join(got, " ") != "ACK "+second {
						t.Fatalf("call %d: the callee got %v, want [ACK %s]", i, got, second)
					}
					seenMu.Lock()
					stages := seen[c.invite.CallID().Value()]
					seenMu.Unlock()
					if strings.Join(stages, " ") != "INVITE ACK "+second {
						t.Fatalf("call %d: the stages saw %v, want [INVITE ACK %s]", i, stages, second)
					}
				}
			})
		}
	}
}
