package engine

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
)

// peer is a SIP phone on a raw UDP socket: it sends what a test writes and
// hands what it reads to the test, so that a test can play a phone that
// misbehaves (never answers a CANCEL, never ACKs).
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	in   chan *sip.Message
	from map[string]*net.UDPAddr // Call-ID -> where its last request came from
}

// newPeer opens a peer on ip (a loopback address) and reads its socket
// until the test ends. A handler, when set, answers requests itself.
func newPeer(t *testing.T, ip string, handle func(p *peer, req *sip.Request, from *net.UDPAddr)) *peer {
	t.Helper()
	p := &peer{t: t, conn: listenUDP(t, ip), in: make(chan *sip.Message, 4096), from: map[string]*net.UDPAddr{}}
	serveUDP(t, p.conn, func(data []byte, from *net.UDPAddr) {
		msg, err := sip.ParseMessage(append([]byte(nil), data...))
		if err != nil {
			return
		}
		if req, ok := msg.(*sip.Request); ok && handle != nil {
			handle(p, req, from)
			return
		}
		select {
		case p.in <- &msg:
		default:
		}
	})
	return p
}

func (p *peer) addr() string { return p.conn.LocalAddr().String() }

func (p *peer) send(to string, msg sip.Message) {
	p.t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDP([]byte(msg.String()), dst); err != nil {
		p.t.Error(err)
	}
}

// answer sends a response to req back where req came from.
func (p *peer) answer(req *sip.Request, from *net.UDPAddr, code int, reason string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code > 100 {
		if to := res.To(); to != nil && !to.Params.Has("tag") {
			to.Params.Add("tag", "callee")
		}
	}
	if _, err := p.conn.WriteToUDP([]byte(res.String()), from); err != nil {
		p.t.Error(err)
	}
}

// response waits for the next response to the request req with a status
// code of at least min, until deadline.
func (p *peer) response(req *sip.Request, min int, wait time.Duration) *sip.Response {
	p.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-p.in:
			res, ok := (*m).(*sip.Response)
			if ok && res.CSeq() != nil && res.CSeq().MethodName == req.Method && callID(res) == callID(req) && res.StatusCode >= min {
				return res
			}
		case <-deadline:
			return nil
		}
	}
}

// invite builds an INVITE from p for uri with a branch and Call-ID of id.
func (p *peer) invite(uri, id string) *sip.Request {
	return p.request(sip.INVITE, uri, id, 1)
}

func (p *peer) request(method sip.RequestMethod, uri, id string, seq int) *sip.Request {
	p.t.Helper()
	raw := fmt.Sprintf("%s %s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:caller@127.0.0.1>;tag=%s\r\n"+
		"To: <%s>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d %s\r\n"+
		"Contact: <sip:caller@%s>\r\n"+
		"Content-Length: 0\r\n\r\n", method, uri, p.addr(), id, id, uri, id, seq, method, p.addr())
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		p.t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// cancelOf is the CANCEL of an INVITE that p sent.
func cancelOf(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, name := range []string{"Max-Forwards", "From", "To", "Call-ID"} {
		c.AppendHeader(sip.HeaderClone(inv.GetHeader(name)))
	}
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.AppendHeader(sip.NewHeader("Content-Length", "0"))
	return c
}

// ackOf is the ACK of a non-2xx final response res to inv (RFC 3261
// 17.1.1.3): the INVITE's top Via, the response's To.
func ackOf(inv *sip.Request, res *sip.Response) *sip.Request {
	a := sip.NewRequest(sip.ACK, inv.Recipient)
	a.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, name := range []string{"Max-Forwards", "From", "Call-ID"} {
		a.AppendHeader(sip.HeaderClone(inv.GetHeader(name)))
	}
	a.AppendHeader(sip.HeaderClone(res.To()))
	a.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	a.AppendHeader(sip.NewHeader("Content-Length", "0"))
	return a
}

// ringing is a callee that answers every INVITE with 180 and never with
// a final response; cancel says what it does with a CANCEL: "200" answers
// it (and never sends the 487), "200+180" rings again after that, ""
// ignores it.
func ringing(cancel string) func(p *peer, req *sip.Request, from *net.UDPAddr) {
	var mu sync.Mutex
	var last *sip.Request
	return func(p *peer, req *sip.Request, from *net.UDPAddr) {
		switch {
		case req.IsInvite():
			mu.Lock()
			last = req
			mu.Unlock()
			p.answer(req, from, 180, "Ringing")
		case req.IsCancel() && cancel != "":
			p.answer(req, from, 200, "OK")
			mu.Lock()
			inv := last
			mu.Unlock()
			if cancel == "200+180" && inv != nil {
				p.answer(inv, from, 180, "Ringing")
			}
		}
	}
}

// forwardingEngine runs an engine whose pipeline forwards every request by
// its Request-URI, with the [server] and forward keys given in TOML.
func forwardingEngine(t *testing.T, server, forward string) *Engine {
	t.Helper()
	return forwardingEngineWith(t, Options{}, server, forward)
}

// forwardingEngineWith is forwardingEngine with the engine's options;
// server may end with stages of its own, which run before the forward one.
func forwardingEngineWith(t *testing.T, opts Options, server, forward string) *Engine {
	t.Helper()
	e := testEngineWith(t, 65535, opts)
	cfg, err := config.Parse("test.toml", []byte("[server]\n"+server+"\n[[stage]]\nuse = \"forward\"\n"+forward+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Sockets = e.Sockets()
	p, err := pipeline.Build(cfg, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.current.Store(p)
	return e
}

// waitEnded polls until no INVITE transaction is left in the engine (in
// flight or lingering), or fails after wait.
func waitEnded(t *testing.T, e *Engine, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n := 0
		e.invites.Range(func(any, any) bool { n++; return true })
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d INVITE transactions still held after %s", n, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
