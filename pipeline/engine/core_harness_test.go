package engine

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/location"
	_ "github.com/switchboard-sip/switchboard/stages/parse"
	_ "github.com/switchboard-sip/switchboard/stages/record_route"
	_ "github.com/switchboard-sip/switchboard/stages/registrar"
)

// The core tests run the real engine on loopback, with the product's chain
// built from TOML, between phones on raw UDP sockets: a caller and callees
// that answer by a script. Each case checks what the phones received.

// coreWait bounds every wait of the core tests: long enough for a busy
// machine under -race, reached only when a test fails.
const coreWait = 10 * time.Second

// lookupChain is the front of the product's chain: parse, registrar,
// location.
const lookupChain = `
[[stage]]
use = "parse"
[[stage]]
use = "registrar"
[[stage]]
use = "location"
`

// productChain is the chain of the product's minimal config: lookupChain,
// record_route, forward.
const productChain = lookupChain + `
[[stage]]
use = "record_route"
[[stage]]
use = "forward"
`

// core is an engine on loopback whose pipeline is built from a TOML chain,
// with a location store and a dialog key: the proxy core as the binary runs
// it.
type core struct {
	e    *Engine
	addr string // the UDP socket, "127.0.0.1:port"
}

// newCore runs an engine (testEngine) with a pipeline of chain, for the
// domain example.org.
func newCore(t *testing.T, chain string) *core {
	t.Helper()
	return newCoreWith(t, chain, Options{})
}

// newCoreWith is newCore with the engine's options.
func newCoreWith(t *testing.T, chain string, opts Options) *core {
	t.Helper()
	return newCoreOn(t, "", chain, opts)
}

// newCoreOn is newCoreWith with more sockets (listen URIs) and config
// sections (sections, before the chain).
func newCoreOn(t testing.TB, sections, chain string, opts Options, listen ...string) *core {
	t.Helper()
	registerCoreStages()
	e := testEngineWith(t, 65535, opts)
	for _, uri := range listen {
		l, err := config.ParseListen(uri)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Listen([]config.Listen{l}); err != nil {
			t.Fatal(err)
		}
	}
	e.svc.Location = location.NewMemory()
	e.svc.DialogKey = []byte("core test dialog key")
	e.svc.Log = e.log
	e.svc.Metrics = metrics.New(metrics.Gauges{})
	cfg, err := config.Parse("core.toml", []byte("[server]\ndomains = [\"example.org\"]\n"+sections+chain))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(cfg, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.Use(p)
	return &core{e: e, addr: e.testAddr("UDP")}
}

// uri is the proxy's own URI with the given user ("" for none).
func (c *core) uri(user string) string {
	if user == "" {
		return "sip:" + c.addr
	}
	return "sip:" + user + "@" + c.addr
}

// register binds user@example.org to ph's Contact, through the registrar.
func (c *core) register(ph *phone, user string) { c.bind(ph, user, ph.contact()) }

// bind registers contact for user@example.org, sent by ph.
func (c *core) bind(ph *phone, user, contact string) {
	ph.t.Helper()
	req := ph.build(sip.REGISTER, "sip:example.org", "sip:"+user+"@example.org", "reg-"+user+"-"+ph.name, 1, "Expires: 300")
	req.RemoveHeader("Contact")
	var u sip.Uri
	if err := sip.ParseUri(contact, &u); err != nil {
		ph.t.Fatal(err)
	}
	req.AppendHeader(&sip.ContactHeader{Address: u})
	ph.send(c.addr, req)
	if res := ph.waitResponse(req, 200); res.StatusCode != 200 {
		ph.t.Fatalf("REGISTER of %s for %s answered %d %s", contact, user, res.StatusCode, res.Reason)
	}
}

// idle waits until the engine has no transaction without a final
// response: whatever a transaction answers upstream has been written.
func (c *core) idle(t *testing.T) {
	t.Helper()
	poll(t, "no transaction in flight", func() bool { return c.e.InFlight() == 0 })
}

// ended waits until every transaction has ended, lingering ones too.
func (c *core) ended(t *testing.T) {
	t.Helper()
	poll(t, "every transaction ended", func() bool { return c.e.InFlight() == 0 && c.e.Lingering() == 0 })
}

// poll waits until cond holds, failing the test after coreWait.
func poll(t *testing.T, what string, cond func() bool) { pollFor(t, coreWait, what, cond) }

// pollFor waits until cond holds, failing the test or benchmark after
// within.
func pollFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// script is how a phone answers a request it receives.
type script func(ph *phone, req *sip.Request, from *net.UDPAddr)

// received is a message a phone read, and where from.
type received struct {
	msg  sip.Message
	from *net.UDPAddr
}

// phone is a SIP phone on a raw UDP socket: it keeps every message it
// reads, in order, and answers requests by its script (nil answers
// nothing).
type phone struct {
	t      *testing.T
	name   string
	conn   *net.UDPConn
	script script
	// private, when set, is the address the phone writes in its Via and
	// Contact instead of its socket's: a phone behind NAT.
	private string

	mu     sync.Mutex
	log    []received
	synced int // the last sync marker read
	sent   int // the last sync marker sent
	// invite is the last INVITE read, from where, and whether it has had
	// a final response; the scripts answer its CANCEL by it.
	invite     *sip.Request
	inviteFrom *net.UDPAddr
	final      bool
}

// newPhone opens a phone on 127.0.0.1 and reads its socket until the test
// ends.
func newPhone(t *testing.T, name string, s script) *phone {
	t.Helper()
	ph := &phone{t: t, name: name, conn: listenUDP(t, "127.0.0.1"), script: s}
	serveUDP(t, ph.conn, ph.read)
	return ph
}

// listenUDP opens a UDP socket on ip (a loopback address), closed when the
// test ends.
func listenUDP(t testing.TB, ip string) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// serveUDP hands each datagram conn reads to read, on one goroutine, until
// the test ends.
func serveUDP(t *testing.T, conn *net.UDPConn, read func(data []byte, from *net.UDPAddr)) {
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			read(buf[:n], from)
		}
	}()
}

func (ph *phone) read(data []byte, from *net.UDPAddr) {
	if marker, ok := strings.CutPrefix(string(data), "sync "); ok {
		n, _ := strconv.Atoi(marker)
		ph.mu.Lock()
		ph.synced = n
		ph.mu.Unlock()
		return
	}
	msg, err := sip.ParseMessage(append([]byte(nil), data...))
	if err != nil {
		ph.t.Errorf("%s read what does not parse: %v\n%s", ph.name, err, data)
		return
	}
	ph.mu.Lock()
	ph.log = append(ph.log, received{msg, from})
	ph.mu.Unlock()
	if req, ok := msg.(*sip.Request); ok && ph.script != nil {
		ph.script(ph, req, from)
	}
}

func (ph *phone) addr() string { return ph.conn.LocalAddr().String() }

// sentBy is the address the phone writes in its Via and Contact: its
// socket's, or its private one behind NAT.
func (ph *phone) sentBy() string {
	if ph.private != "" {
		return ph.private
	}
	return ph.addr()
}

// rport is the Via parameter a phone behind NAT asks its answers to come
// back to its source port with (RFC 3581).
func (ph *phone) rport() string {
	if ph.private != "" {
		return ";rport"
	}
	return ""
}

// contact is the phone's Contact URI.
func (ph *phone) contact() string { return "sip:" + ph.name + "@" + ph.sentBy() }

// tag is the To tag of the phone's answers.
func (ph *phone) tag() string { return "tag-" + ph.name }

func (ph *phone) send(to string, msg sip.Message) {
	ph.t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		ph.t.Fatal(err)
	}
	if _, err := ph.conn.WriteToUDP([]byte(msg.String()), dst); err != nil {
		ph.t.Error(err)
	}
}

// build makes a request from the phone, in a call of its own (callID is
// also the From tag); extra are header lines added as they are.
func (ph *phone) build(method sip.RequestMethod, ruri, to, callID string, seq int, extra ...string) *sip.Request {
	ph.t.Helper()
	raw := fmt.Sprintf("%s %s SIP/2.0\n"+
		"Via: SIP/2.0/UDP %s;branch=%s%s\n"+
		"Max-Forwards: 70\n"+
		"From: <sip:%s@example.org>;tag=%s\n"+
		"To: <%s>\n"+
		"Call-ID: %s\n"+
		"CSeq: %d %s\n"+
		"Contact: <%s>\n", method, ruri, ph.sentBy(), sip.GenerateBranch(), ph.rport(), ph.name, callID, to, callID, seq, method, ph.contact())
	for _, h := range extra {
		raw += h + "\n"
	}
	return stagetest.Request(ph.t, raw)
}

// call sends an INVITE for user@example.org to the proxy.
func (ph *phone) call(c *core, user, callID string, extra ...string) *sip.Request {
	ph.t.Helper()
	inv := ph.build(sip.INVITE, "sip:"+user+"@example.org", "sip:"+user+"@example.org", callID, 1, extra...)
	ph.send(c.addr, inv)
	return inv
}

// inDialog makes the phone's next request in the dialog that ok (a 2xx it
// received) set up: to the remote Contact, along the Record-Route set, with
// the dialog's tags (RFC 3261 12.2.1.1). An ACK takes the INVITE's CSeq
// number.
func (ph *phone) inDialog(method sip.RequestMethod, ok *sip.Response, seq int) *sip.Request {
	ph.t.Helper()
	contact := ok.Contact()
	if contact == nil {
		ph.t.Fatalf("the %d has no Contact", ok.StatusCode)
	}
	return ph.dialogRequest(method, contact.Address, ok.GetHeaders("Record-Route"), ok.From(), ok.To(), callID(ok), seq)
}

// calleeRequest makes the callee's request in the dialog that inv (the
// INVITE it received, and answered) set up: to the caller's Contact, along
// the Record-Route set.
func (ph *phone) calleeRequest(method sip.RequestMethod, inv *sip.Request, seq int) *sip.Request {
	ph.t.Helper()
	from := &sip.FromHeader{Address: *inv.To().Address.Clone(), Params: inv.To().Params.Clone()}
	from.Params.Add("tag", ph.tag())
	to := &sip.ToHeader{Address: *inv.From().Address.Clone(), Params: inv.From().Params.Clone()}
	return ph.dialogRequest(method, inv.Contact().Address, inv.GetHeaders("Record-Route"), from, to, callID(inv), seq)
}

// dialogRequest makes a request in a dialog: remote is the Request-URI,
// recordRoute the route set, from and to the local and remote ends.
func (ph *phone) dialogRequest(method sip.RequestMethod, remote sip.Uri, recordRoute []sip.Header, from, to sip.Header, id string, seq int) *sip.Request {
	req := sip.NewRequest(method, *remote.Clone())
	host, port, _ := net.SplitHostPort(ph.sentBy())
	p, _ := strconv.Atoi(port)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: host, Port: p, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	if ph.private != "" {
		via.Params.Add("rport", "")
	}
	req.AppendHeader(via)
	for _, h := range recordRoute {
		req.AppendHeader(&sip.RouteHeader{Address: *h.(*sip.RecordRouteHeader).Address.Clone()})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(from))
	req.AppendHeader(sip.HeaderClone(to))
	cid := sip.CallIDHeader(id)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(seq), MethodName: method})
	req.AppendHeader(sip.NewHeader("Contact", "<"+ph.contact()+">"))
	req.AppendHeader(sip.NewHeader("Content-Length", "0"))
	return req
}

// reply answers req, received from from, with code: the phone's To tag and
// Contact, the Record-Route copied (sipgo does it for 18x and 2xx), and for
// a 401 or 407 a challenge whose realm is the phone's name.
func (ph *phone) reply(req *sip.Request, from *net.UDPAddr, code int) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reasonOf(code), nil)
	if to := res.To(); to != nil && code > 100 && !inDialog(req) {
		to.Params.Add("tag", ph.tag())
	}
	if code > 100 && code < 300 {
		res.AppendHeader(sip.NewHeader("Contact", "<"+ph.contact()+">"))
	}
	switch code {
	case 401:
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="`+ph.name+`", nonce="1"`))
	case 407:
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="`+ph.name+`", nonce="1"`))
	}
	if req.IsInvite() && code >= 200 {
		ph.mu.Lock()
		ph.final = true
		ph.mu.Unlock()
	}
	if _, err := ph.conn.WriteToUDP([]byte(res.String()), from); err != nil {
		ph.t.Error(err)
	}
	return res
}

// reasonOf is a reason phrase for code: the test reads codes, not phrases.
func reasonOf(code int) string { return "Status " + strconv.Itoa(code) }

// sync waits until the phone has read every datagram that reached its
// socket before the call: it sends the socket a marker and waits for it.
func (ph *phone) sync() {
	ph.t.Helper()
	ph.mu.Lock()
	ph.sent++
	n := ph.sent
	ph.mu.Unlock()
	if _, err := ph.conn.WriteToUDP([]byte("sync "+strconv.Itoa(n)), ph.conn.LocalAddr().(*net.UDPAddr)); err != nil {
		ph.t.Fatal(err)
	}
	poll(ph.t, ph.name+" read its sync marker", func() bool {
		ph.mu.Lock()
		defer ph.mu.Unlock()
		return ph.synced >= n
	})
}

// find returns the messages read so far that match.
func (ph *phone) find(match func(sip.Message) bool) []received {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	var out []received
	for _, r := range ph.log {
		if match(r.msg) {
			out = append(out, r)
		}
	}
	return out
}

// wait returns the n-th message (from 1) that matches, waiting for it.
func (ph *phone) wait(what string, n int, match func(sip.Message) bool) received {
	ph.t.Helper()
	var got []received
	deadline := time.Now().Add(coreWait)
	for {
		if got = ph.find(match); len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			ph.t.Fatalf("%s: no %s after %s; it read:\n%s", ph.name, what, coreWait, ph.dump())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dump lists what the phone read, a line a message.
func (ph *phone) dump() string {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	var b strings.Builder
	for _, r := range ph.log {
		fmt.Fprintf(&b, "  %s\n", summary(r.msg))
	}
	return b.String()
}

func summary(m sip.Message) string {
	line, _, _ := strings.Cut(m.String(), "\r\n")
	if cs := m.CSeq(); cs != nil {
		line += " (" + cs.Value() + ", Call-ID " + callID(m) + ")"
	}
	return line
}

// responsesTo matches the responses to req (by Call-ID and CSeq) with a
// status code of at least min.
func responsesTo(req *sip.Request, min int) func(sip.Message) bool {
	return func(m sip.Message) bool {
		res, ok := m.(*sip.Response)
		return ok && res.StatusCode >= min && callID(res) == callID(req) && res.CSeq() != nil &&
			res.CSeq().MethodName == req.Method && res.CSeq().SeqNo == req.CSeq().SeqNo
	}
}

// requestsOf matches the requests of a call with the given method.
func requestsOf(method sip.RequestMethod, id string) func(sip.Message) bool {
	return func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.Method == method && callID(req) == id
	}
}

// waitResponse waits for the first response to req of at least min.
func (ph *phone) waitResponse(req *sip.Request, min int) *sip.Response {
	ph.t.Helper()
	return ph.wait(fmt.Sprintf("response >= %d to %s", min, req.Method), 1, responsesTo(req, min)).msg.(*sip.Response)
}

// waitRequest waits for the n-th request of a call with the given method.
func (ph *phone) waitRequest(method sip.RequestMethod, id string, n int) (*sip.Request, *net.UDPAddr) {
	ph.t.Helper()
	r := ph.wait(fmt.Sprintf("%s #%d of %s", method, n, id), n, requestsOf(method, id))
	return r.msg.(*sip.Request), r.from
}

// codes lists the status codes of the responses to req read so far,
// retransmissions of a final response once.
func (ph *phone) codes(req *sip.Request) []int {
	var out []int
	seen := map[string]bool{}
	for _, r := range ph.find(responsesTo(req, 0)) {
		res := r.msg.(*sip.Response)
		key := strconv.Itoa(res.StatusCode) + pipeline.ToTag(res)
		if res.StatusCode >= 300 && seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, res.StatusCode)
	}
	return out
}

// answering is a callee's script: an INVITE gets the codes in order, once
// open is closed (nil: at once), or nothing for none; its CANCEL gets 200,
// then the INVITE 487 unless it had a final response. An ACK gets nothing,
// any other request 200.
func answering(open <-chan struct{}, codes ...int) script {
	return answeringCancel(487, open, codes...)
}

// answeringCancel is answering whose INVITE, when cancelled before its
// final response, gets cancelled instead of 487: with 200, the callee's
// answer crosses the CANCEL.
func answeringCancel(cancelled int, open <-chan struct{}, codes ...int) script {
	return func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		switch {
		case req.IsInvite():
			ph.mu.Lock()
			retransmission := ph.invite != nil && ph.invite.Via().Value() == req.Via().Value()
			if !retransmission {
				ph.invite, ph.inviteFrom, ph.final = req, from, false
			}
			ph.mu.Unlock()
			if retransmission || len(codes) == 0 {
				return
			}
			go func() {
				if open != nil {
					select {
					case <-open:
					case <-time.After(coreWait):
						return
					}
				}
				for _, code := range codes {
					ph.reply(req, from, code)
				}
			}()
		case req.IsCancel():
			ph.reply(req, from, 200)
			ph.mu.Lock()
			inv, invFrom, final := ph.invite, ph.inviteFrom, ph.final
			ph.mu.Unlock()
			if inv != nil && !final {
				ph.reply(inv, invFrom, cancelled)
			}
		case req.IsAck():
		default:
			ph.reply(req, from, 200)
		}
	}
}

// gate opens when n callees have read their INVITE: the callees of a fork
// answer only once every branch is out, so that no 2xx stops the proxy
// before it sent the rest.
type gate struct {
	mu   sync.Mutex
	left int
	open chan struct{}
}

func newGate(n int) *gate { return &gate{left: n, open: make(chan struct{})} }

// counted wraps s so that the callee's first INVITE counts towards the gate.
func (g *gate) counted(s script) script {
	var once sync.Once
	return func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		if req.IsInvite() {
			once.Do(func() {
				g.mu.Lock()
				defer g.mu.Unlock()
				if g.left--; g.left == 0 {
					close(g.open)
				}
			})
		}
		s(ph, req, from)
	}
}

// coreForward is the forward stage without its 1 s floor on the timers,
// so that a test of fr_timeout and Timer C waits milliseconds.
type coreForward struct {
	FrTimeout     config.Duration `toml:"fr_timeout"`
	InviteTimeout config.Duration `toml:"invite_timeout"`
}

func (f *coreForward) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	ctx.Forward = pipeline.ForwardOptions{ProvisionalTimeout: f.FrTimeout.D(), InviteTimeout: f.InviteTimeout.D()}
	return pipeline.Forwarded, nil
}

// held are the calls (by Call-ID) whose requests coreHold keeps until the
// channel is closed.
var held sync.Map

// coreHold keeps a request in the request stages while its Call-ID is in
// held, as a stage waiting on DNS or a store does.
type coreHold struct{}

func (*coreHold) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	if ch, ok := held.Load(callID(ctx.Request)); ok {
		select {
		case <-ch.(chan struct{}):
		case <-time.After(coreWait):
		}
	}
	return pipeline.Continue, nil
}

// registerCoreStages registers coreForward as core_forward and coreHold as
// core_hold, once.
var registerCoreStages = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "core_forward", Description: "test", New: func() pipeline.Stage { return new(coreForward) }})
	pipeline.Register(pipeline.StageInfo{Name: "core_hold", Description: "test", New: func() pipeline.Stage { return new(coreHold) }})
})
