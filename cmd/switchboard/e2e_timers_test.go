package main

// End-to-end tests of the proxy core's timers and CANCEL races, seen from
// outside, with the real binary (see e2e_harness_test.go):
//
//   - an INVITE branch that never hears back ends at the forward stage's
//     fr_timeout: the caller gets 408 and the callee no CANCEL;
//   - a non-INVITE branch that never hears back gets no 408 upstream
//     (RFC 4320), and the proxy keeps working;
//   - a callee's 200 crossing the caller's CANCEL: the caller gets the 200
//     and the CANCEL's 200, never a 487, and the call goes on;
//   - a CANCEL over TCP, alone in its read or sharing it with another
//     request (the two paths of the engine's read filter).
//
// SIPp cannot play a phone that stays silent and then answers on cue, so
// these tests use phones written here (timersPeer), on UDP sockets or a TCP
// connection, that record what they receive and send what the test says.
// Their requests are built by secUA.build (e2e_security_test.go) and the
// ACK to a non-2xx response by tortureAck (e2e_rfc4475_test.go).

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const (
	// timersFr is the forward stage's fr_timeout in these tests (the
	// least it accepts).
	timersFr = time.Second
	// timersWait bounds the wait for a message that must come: far more
	// than any timer of the tests, for a loaded machine.
	timersWait = 20 * time.Second
	// timersQuiet is how long a request that must get no final response
	// is watched: several fr_timeouts, and several retransmissions by
	// the caller after the proxy gave up on the branch.
	timersQuiet = 6 * time.Second
	// timersT1 and timersT2 are RFC 3261's T1 and T2, for the callers'
	// retransmissions (Timer E) and for the proxy's (Timer A).
	timersT1 = 500 * time.Millisecond
	timersT2 = 4 * time.Second
	// timersStagesHeader is set on every response by the rewrite stage of
	// TestTimersCancelOverTCP: a response without it skipped the response
	// stages.
	timersStagesHeader = "X-Stages"
)

// timersConfig is testConfig(extra...) with the forward stage's
// fr_timeout set to timersFr.
func timersConfig(extra ...string) string {
	return strings.Replace(testConfig(extra...), "use = \"forward\"",
		fmt.Sprintf("use = \"forward\"\nfr_timeout = \"%s\"", timersFr), 1)
}

// timersMsg is a message a timersPeer received.
type timersMsg struct {
	req  *sip.Request  // nil for a response
	res  *sip.Response // nil for a request
	from net.Addr
	at   time.Time
}

// method is the request's method, or the CSeq method of the response.
func (m timersMsg) method() string {
	if m.req != nil {
		return string(m.req.Method)
	}
	if cs := m.res.CSeq(); cs != nil {
		return string(cs.MethodName)
	}
	return ""
}

func (m timersMsg) String() string {
	if m.req != nil {
		return fmt.Sprintf("%s %s (branch %s)", m.req.Method, m.req.Recipient.String(), timersBranch(m.req))
	}
	return fmt.Sprintf("%d %s (CSeq %s)", m.res.StatusCode, m.res.Reason, m.method())
}

// timersBranch is the branch of a request's top Via.
func timersBranch(req *sip.Request) string {
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		return b
	}
	return ""
}

// timersRequest matches the requests of a method.
func timersRequest(method string) func(timersMsg) bool {
	return func(m timersMsg) bool { return m.req != nil && string(m.req.Method) == method }
}

// timersResponse matches the responses with that code to a method.
func timersResponse(code int, method string) func(timersMsg) bool {
	return func(m timersMsg) bool { return m.res != nil && m.res.StatusCode == code && m.method() == method }
}

// timersFinal matches the final responses to a method.
func timersFinal(method string) func(timersMsg) bool {
	return func(m timersMsg) bool { return m.res != nil && m.res.StatusCode >= 200 && m.method() == method }
}

// timersAnswer is how a phone answers a request, in its reading goroutine.
// It must not call the test's Fatal or Error.
type timersAnswer func(p *timersPeer, m timersMsg)

// timersAnswerOnCancel is a callee whose 200 to the INVITE crosses the
// proxy's CANCEL: it answers the INVITE when the CANCEL comes, then the
// CANCEL (and a BYE) as timersAnswerCancelBye does.
func timersAnswerOnCancel(p *timersPeer, m timersMsg) {
	if m.req != nil && m.req.IsCancel() {
		if inv := p.matching(timersRequest("INVITE")); len(inv) > 0 {
			p.reply(inv[0], 200, "OK")
		}
	}
	timersAnswerCancelBye(p, m)
}

// timersAnswerCancelBye answers CANCEL and BYE with 200, and nothing else.
func timersAnswerCancelBye(p *timersPeer, m timersMsg) {
	if m.req != nil && (m.req.IsCancel() || m.req.Method == sip.BYE) {
		p.reply(m, 200, "OK")
	}
}

// timersPeer is a phone written here, on a UDP socket or a TCP connection
// to the proxy: it records every message it receives, answers requests
// with its timersAnswer (none: it stays silent), and sends what the test
// tells it.
type timersPeer struct {
	t         *testing.T
	name      string
	ua        *secUA // builds its requests; ua.local is its address
	transport string // "UDP" or "TCP"
	proxy     net.Addr
	answer    timersAnswer
	tag       string // its To tag, as a callee
	start     time.Time

	pc   net.PacketConn // UDP
	conn net.Conn       // TCP

	mu      sync.Mutex
	msgs    []timersMsg
	readErr error
}

// timersUDPPeer starts a phone on a UDP socket of ip, sending its requests
// to the proxy at proxyAddr.
func timersUDPPeer(t *testing.T, name, ip, proxyAddr string, answer timersAnswer) *timersPeer {
	t.Helper()
	ua := secNewUA(t, ip, proxyAddr)
	p := &timersPeer{t: t, name: name, ua: ua, transport: "UDP", proxy: ua.proxy, answer: answer, tag: name + "-tag", start: time.Now(), pc: ua.pc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := p.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(slices.Clone(buf[:n]))
			if err != nil {
				p.mu.Lock()
				p.readErr = fmt.Errorf("a datagram from %s does not parse (%v): %q", from, err, buf[:n])
				p.mu.Unlock()
				continue
			}
			p.record(msg, from)
		}
	}()
	t.Cleanup(func() {
		p.pc.Close()
		<-done
	})
	return p
}

// timersTCPPeer starts a phone on a TCP connection from ip to the proxy's
// TCP listener at proxyAddr.
func timersTCPPeer(t *testing.T, name, ip, proxyAddr string, answer timersAnswer) *timersPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp4", proxyAddr)
	if err != nil {
		t.Fatalf("connecting to the proxy at %s: %v", proxyAddr, err)
	}
	p := &timersPeer{t: t, name: name, ua: &secUA{t: t, local: conn.LocalAddr().String()}, transport: "TCP",
		proxy: conn.RemoteAddr(), answer: answer, tag: name + "-tag", start: time.Now(), conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		stream := sip.NewParser().NewSIPStream()
		defer stream.Close()
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			err = stream.ParseSIPStream(buf[:n], func(msg sip.Message) { p.record(msg, conn.RemoteAddr()) })
			if err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
				p.mu.Lock()
				p.readErr = fmt.Errorf("the stream from the proxy does not parse: %v", err)
				p.mu.Unlock()
				return
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return p
}

// record keeps a message and answers it.
func (p *timersPeer) record(msg sip.Message, from net.Addr) {
	m := timersMsg{from: from, at: time.Now()}
	// sipgo parses some headers on first use and caches them: parse the
	// ones the tests read now, before other goroutines share the message.
	msg.Via()
	msg.From()
	msg.To()
	msg.CallID()
	msg.CSeq()
	switch msg := msg.(type) {
	case *sip.Request:
		msg.Contact()
		msg.SetSource(from.String())
		m.req = msg
	case *sip.Response:
		msg.Contact()
		m.res = msg
	default:
		return
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
	if m.req != nil && p.answer != nil {
		p.answer(p, m)
	}
}

// received returns what the phone received so far, in order.
func (p *timersPeer) received() []timersMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

// matching returns the messages received that match.
func (p *timersPeer) matching(match func(timersMsg) bool) []timersMsg {
	var out []timersMsg
	for _, m := range p.received() {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// report lists what the phone received, with the time since it started.
func (p *timersPeer) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s %s) received:\n", p.name, p.transport, p.ua.local)
	for _, m := range p.received() {
		fmt.Fprintf(&b, "    +%v %s\n", m.at.Sub(p.start).Round(time.Millisecond), m)
	}
	p.mu.Lock()
	if p.readErr != nil {
		fmt.Fprintf(&b, "    read error: %v\n", p.readErr)
	}
	p.mu.Unlock()
	return b.String()
}

// waitFor polls until the phone received a message that matches, and
// returns the first; it fails the test after timersWait.
func (p *timersPeer) waitFor(what string, match func(timersMsg) bool) timersMsg {
	p.t.Helper()
	deadline := time.Now().Add(timersWait)
	for {
		if got := p.matching(match); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s got no %s within %v\n%s", p.name, what, timersWait, p.report())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// write sends raw bytes: to the address to over UDP, on the connection
// over TCP.
func (p *timersPeer) write(data []byte, to net.Addr) error {
	if p.conn != nil {
		_, err := p.conn.Write(data)
		return err
	}
	_, err := p.pc.WriteTo(data, to)
	return err
}

// send sends text to the proxy, failing the test if it cannot.
func (p *timersPeer) send(text string) {
	p.t.Helper()
	if err := p.write([]byte(text), p.proxy); err != nil {
		p.t.Fatalf("%s: send to the proxy: %v", p.name, err)
	}
}

// build writes a request with secUA.build, for the phone's transport.
func (p *timersPeer) build(r secReq, callID, fromTag string, cseq int, branch string) string {
	if p.transport == "TCP" && r.Contact == "" && !r.NoContact {
		user, _, _ := strings.Cut(r.From, "@")
		r.Contact = "sip:" + user + "@" + p.ua.local + ";transport=tcp"
	}
	text := p.ua.build(r, callID, fromTag, cseq, branch, "")
	if p.transport == "TCP" {
		text = strings.Replace(text, "Via: SIP/2.0/UDP ", "Via: SIP/2.0/TCP ", 1)
	}
	return text
}

// reply answers a request the phone received, with the phone's To tag and,
// for a 1xx or 2xx to an INVITE, its Contact. It is safe in an answer
// function: it reports no error.
func (p *timersPeer) reply(m timersMsg, code int, reason string) {
	res := sip.NewResponseFromRequest(m.req, code, reason, nil)
	if to := res.To(); to != nil && code > 100 {
		to.Params.Add("tag", p.tag)
	}
	if m.req.IsInvite() && code > 100 && code < 300 {
		user := m.req.Recipient.User
		res.AppendHeader(sip.NewHeader("Contact", "<sip:"+user+"@"+p.ua.local+">"))
	}
	_ = p.write([]byte(res.String()), m.from)
}

// timersCall is a call placed by a timersPeer: the identifiers its
// requests share.
type timersCall struct {
	p      *timersPeer
	uri    string
	from   string // user@host
	to     string // user@host
	callID string
	tag    string
	branch string // the INVITE's
	invite *sip.Request
}

// call sends an INVITE for user, in the proxy's domain, to the proxy.
func (p *timersPeer) call(user string) *timersCall {
	p.t.Helper()
	c := &timersCall{p: p, uri: "sip:" + user + "@" + p.proxy.String(), from: "alice@" + proxyDomain, to: user + "@" + proxyDomain,
		callID: "timers-" + secRandom(), tag: secRandom(), branch: "z9hG4bK-timers-" + secRandom()}
	text := p.build(secReq{Method: "INVITE", URI: c.uri, From: c.from, To: c.to}, c.callID, c.tag, 1, c.branch)
	msg, err := sip.ParseMessage([]byte(text))
	if err != nil {
		p.t.Fatalf("the test's INVITE does not parse: %v\n%s", err, text)
	}
	c.invite = msg.(*sip.Request)
	p.send(text)
	return c
}

// cancelText is the CANCEL of the call's INVITE (RFC 3261 9.1), not sent.
func (c *timersCall) cancelText() string {
	return c.p.build(secReq{Method: "CANCEL", URI: c.uri, From: c.from, To: c.to, NoContact: true}, c.callID, c.tag, 1, c.branch)
}

// ackNon2xx acknowledges a non-2xx final response to the INVITE, hop by
// hop.
func (c *timersCall) ackNon2xx(res *sip.Response) {
	c.p.send(tortureAck(c.invite, res))
}

// inDialog sends a request of the dialog the 2xx ok set up: to its
// Contact, through its Record-Route in reverse (RFC 3261 12.1.2), on a new
// branch.
func (c *timersCall) inDialog(method string, cseq int, ok *sip.Response) {
	c.p.t.Helper()
	contact := ok.Contact()
	if contact == nil {
		c.p.t.Fatalf("the 200 to the INVITE has no Contact:\n%s", ok)
	}
	var routes []string
	for _, h := range ok.GetHeaders("Record-Route") {
		for _, r := range strings.Split(h.Value(), ",") {
			routes = append(routes, strings.TrimSpace(r))
		}
	}
	slices.Reverse(routes)
	r := secReq{Method: method, URI: contact.Address.String(), From: c.from, To: c.to, ToTag: secToTag(ok),
		Route: strings.Join(routes, ", "), NoContact: true}
	c.p.send(c.p.build(r, c.callID, c.tag, cseq, "z9hG4bK-timers-"+secRandom()))
}

// TestTimersInviteFrTimeout: an INVITE forwarded to a registered phone
// that never answers, not even with 100 Trying. At fr_timeout the proxy
// gives the branch up: it acts as if the branch had answered 408 (RFC 3261
// 16.8) and, being the only branch, sends that 408 upstream (16.7 step 6).
// It sends no CANCEL: a branch without a provisional response must not be
// cancelled (RFC 3261 9.1), and the client transaction ends, so the INVITE
// is not retransmitted to the phone after the caller got its answer. The
// ACK for the 408 is hop by hop (17.1.1.3): it never reaches the phone.
func TestTimersInviteFrTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, timersConfig())
	callee := timersUDPPeer(t, "callee", calleeIP, p.UDP, nil) // silent
	registerUser(t, p.UDP, "bob", calleeIP, callee.pc.LocalAddr().(*net.UDPAddr).Port, "udp")
	caller := timersUDPPeer(t, "caller", callerIP, p.UDP, nil)

	call := caller.call("bob")
	first := callee.waitFor("forwarded INVITE", timersRequest("INVITE"))
	caller.waitFor("100 Trying", timersResponse(100, "INVITE"))
	final := caller.waitFor("final response to the INVITE", timersFinal("INVITE"))
	call.ackNon2xx(final.res)
	t.Logf("the caller got %d %s %v after the callee got the INVITE (fr_timeout %v)",
		final.res.StatusCode, final.res.Reason, final.at.Sub(first.at).Round(time.Millisecond), timersFr)
	if final.res.StatusCode != 408 {
		t.Errorf("the caller got %s, want 408 Request Timeout (RFC 3261 16.8: a branch with no response at the timeout counts as 408)\n%s",
			final, caller.report())
	}

	// The proxy's Timer A retransmits at T1, 3*T1, 7*T1, 15*T1 after the
	// first INVITE while the client transaction lives: watch past 15*T1.
	// A retransmission already in flight when the 408 left is forgiven
	// (a second of grace).
	until := first.at.Add(15*timersT1 + 1500*time.Millisecond)
	if least := final.at.Add(3 * time.Second); until.Before(least) {
		until = least
	}
	time.Sleep(time.Until(until))

	if got := callee.matching(timersRequest("CANCEL")); len(got) > 0 {
		t.Errorf("the callee received %d CANCEL for a branch that had no provisional response (RFC 3261 9.1: it must not be sent)\n%s",
			len(got), callee.report())
	}
	if got := callee.matching(timersRequest("ACK")); len(got) > 0 {
		t.Errorf("the callee received the caller's ACK for the proxy's 408: an ACK for a non-2xx is hop by hop (RFC 3261 17.1.1.3)\n%s",
			callee.report())
	}
	branches := map[string]bool{}
	late := 0
	for _, m := range callee.matching(timersRequest("INVITE")) {
		branches[timersBranch(m.req)] = true
		if m.at.After(final.at.Add(time.Second)) {
			late++
		}
	}
	if len(branches) != 1 {
		t.Errorf("the callee received INVITEs on %d branches, want 1\n%s", len(branches), callee.report())
	}
	if late > 0 {
		t.Errorf("the callee received %d INVITE retransmissions more than 1s after the caller got the final response: the timed-out client transaction still runs (RFC 3261 16.8: terminate it)\n%s",
			late, callee.report())
	}
	if got := caller.matching(timersFinal("INVITE")); len(got) > 0 && got[len(got)-1].at.After(final.at.Add(time.Second)) {
		// Retransmissions of the 408 mean the ACK did not reach the
		// server transaction.
		t.Errorf("the proxy retransmitted its %d after the caller's ACK\n%s", final.res.StatusCode, caller.report())
	}
}

// TestTimersNonInviteNo408: a MESSAGE or an OPTIONS to a registered phone
// that never answers. The proxy must not send 408 upstream when the branch
// times out (RFC 4320 4.2: a 408 to a non-INVITE always arrives too late to
// matter, and only adds load); the caller's own transaction times out.
// The caller retransmits as a UA does (Timer E), well past fr_timeout; the
// proxy's server transaction absorbs those retransmissions (RFC 3261
// 17.2.2), so the phone receives the request on one branch only. Then the
// proxy still places a call.
func TestTimersNonInviteNo408(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"MESSAGE", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, timersConfig())
			callee := timersUDPPeer(t, "callee", calleeIP, p.UDP, nil) // silent
			registerUser(t, p.UDP, "bob", calleeIP, callee.pc.LocalAddr().(*net.UDPAddr).Port, "udp")
			carol := startPhone(t, "uas.xml", callee2IP, "udp")
			registerPhone(t, p, "carol", carol)
			caller := timersUDPPeer(t, "caller", callerIP, p.UDP, nil)

			req := secReq{Method: method, URI: "sip:bob@" + p.UDP, From: "alice@" + proxyDomain, To: "bob@" + proxyDomain, NoContact: true}
			text := caller.build(req, "timers-"+secRandom(), secRandom(), 1, "z9hG4bK-timers-"+secRandom())
			// Timer E: retransmit after T1, doubling up to T2, for
			// timersQuiet.
			end := time.Now().Add(timersQuiet)
			for interval := timersT1; ; interval = min(2*interval, timersT2) {
				caller.send(text)
				if time.Until(end) <= interval {
					break
				}
				time.Sleep(interval)
			}
			time.Sleep(time.Until(end))

			if len(callee.matching(timersRequest(method))) == 0 {
				t.Fatalf("the callee never received the %s\n%s", method, callee.report())
			}
			if got := caller.matching(timersFinal(method)); len(got) > 0 {
				t.Errorf("the caller got %s, %v after it first sent the %s: a proxy must send no final response when a non-INVITE branch times out (RFC 4320 4.2), least of all 408\n%s",
					got[0], got[0].at.Sub(caller.start).Round(time.Millisecond), method, caller.report())
			}
			branches := map[string]bool{}
			for _, m := range callee.matching(timersRequest(method)) {
				branches[timersBranch(m.req)] = true
			}
			if len(branches) != 1 {
				t.Errorf("the callee received the one %s transaction of the caller on %d branches, want 1: the caller's retransmissions were forwarded as new transactions (RFC 3261 17.2.2: the server transaction absorbs them)\n%s\n%s",
					method, len(branches), caller.report(), callee.report())
			}

			// The proxy still works.
			callFrom(t, p, "uac.xml", "udp", "-s", "carol").ExpectCalls(1)
			carol.ExpectCalls(1)
		})
	}
}

// TestTimersCancelCrosses200: the caller cancels a ringing call just as
// the callee answers it. The 200 to the INVITE always goes upstream (RFC
// 3261 16.7 step 5: a 2xx is forwarded at once, whatever the state of the
// call), the CANCEL gets its own 200 (16.10: the response context exists),
// and no 487 follows: the INVITE's final response is the 200. The caller
// then acknowledges the 200 and hangs up through the proxy.
//
// The cases order the two messages:
//   - after the 200: the CANCEL is sent once the caller has the 200; the
//     branch is over, so the proxy sends no CANCEL downstream (16.10: only
//     pending client transactions are cancelled);
//   - answer first: the callee's 200 is sent, then at once the CANCEL;
//   - cancel first: the CANCEL is sent, then at once the callee's 200;
//   - crossed downstream: the proxy's CANCEL reaches the callee after the
//     callee answered (the callee sends its 200 to the INVITE on receiving
//     the CANCEL, then the 200 to the CANCEL, as RFC 3261 9.2 has a UAS
//     that already answered do).
func TestTimersCancelCrosses200(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer timersAnswer
		// race sends the callee's 200 (ok) and the caller's CANCEL;
		// relayed waits until the caller has the 200.
		race func(ok, cancel, relayed func())
		// noCancel: the callee must receive no CANCEL.
		noCancel bool
	}{
		{"after the 200", timersAnswerCancelBye, func(ok, cancel, relayed func()) { ok(); relayed(); cancel() }, true},
		{"answer first", timersAnswerCancelBye, func(ok, cancel, relayed func()) { ok(); cancel() }, false},
		{"cancel first", timersAnswerCancelBye, func(ok, cancel, relayed func()) { cancel(); ok() }, false},
		{"crossed downstream", timersAnswerOnCancel, func(ok, cancel, relayed func()) { cancel() }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, testConfig())
			callee := timersUDPPeer(t, "callee", calleeIP, p.UDP, tc.answer)
			registerUser(t, p.UDP, "bob", calleeIP, callee.pc.LocalAddr().(*net.UDPAddr).Port, "udp")
			caller := timersUDPPeer(t, "caller", callerIP, p.UDP, nil)

			call := caller.call("bob")
			inv := callee.waitFor("forwarded INVITE", timersRequest("INVITE"))
			callee.reply(inv, 180, "Ringing")
			caller.waitFor("180 Ringing", timersResponse(180, "INVITE"))
			cancel := call.cancelText()
			tc.race(func() { callee.reply(inv, 200, "OK") }, func() { caller.send(cancel) },
				func() { caller.waitFor("200 to the INVITE", timersResponse(200, "INVITE")) })

			ok := caller.waitFor("200 to the INVITE", timersResponse(200, "INVITE"))
			caller.waitFor("final response to the CANCEL", timersFinal("CANCEL"))
			call.inDialog("ACK", 1, ok.res)
			callee.waitFor("ACK for the 200", timersRequest("ACK"))
			call.inDialog("BYE", 2, ok.res)
			caller.waitFor("final response to the BYE", timersFinal("BYE"))
			// Room for a wrong 487, or a late retransmission, to arrive.
			time.Sleep(500 * time.Millisecond)

			for _, want := range []struct {
				method string
				code   int
				why    string
			}{
				{"INVITE", 200, "the callee answered: RFC 3261 16.7 step 5 forwards a 2xx at once, and a 487 after it would contradict it"},
				{"CANCEL", 200, "RFC 3261 16.10: a CANCEL that matches a response context gets 200"},
				{"BYE", 200, "the callee answered the BYE with 200"},
			} {
				for _, m := range caller.matching(timersFinal(want.method)) {
					if m.res.StatusCode != want.code {
						t.Errorf("the caller got %s, want only %d to the %s (%s)\n%s\n%s", m, want.code, want.method, want.why, caller.report(), callee.report())
					}
				}
			}
			branches := map[string]bool{}
			for _, m := range callee.matching(timersRequest("INVITE")) {
				branches[timersBranch(m.req)] = true
			}
			if len(branches) != 1 {
				t.Errorf("the callee received INVITEs on %d branches, want 1\n%s", len(branches), callee.report())
			}
			if got := callee.matching(timersRequest("BYE")); len(got) == 0 {
				t.Errorf("the BYE did not reach the callee\n%s", callee.report())
			}
			cancels := len(callee.matching(timersRequest("CANCEL")))
			if tc.noCancel && cancels > 0 {
				t.Errorf("the proxy sent the callee a CANCEL for a branch that had answered 200 (RFC 3261 16.10: only pending client transactions are cancelled)\n%s", callee.report())
			}
			t.Logf("the proxy sent the callee %d CANCEL", cancels)
		})
	}
}

// TestTimersCancelOverTCP: a caller on TCP cancels a ringing call. The
// proxy answers the CANCEL with 200, cancels the branch (a SIPp callee,
// uas_ring.xml, that checks the CANCEL), and the INVITE gets 487, which
// the caller acknowledges. The CANCEL comes in its own TCP read, first in
// a read followed by another request, or after another request in the
// same read (an OPTIONS to the proxy, which gets its 200).
//
// The engine's read filter takes a CANCEL that starts a read out of
// sipgo's way, so that the proxy makes the 200 and relays the callee's
// 487 through the response stages; here a rewrite stage marks every
// response that passes them with X-Stages. A CANCEL after another message
// in the read is left to sipgo, whose 200 and 487 skip the stages: a known
// deviation, logged and not failed.
func TestTimersCancelOverTCP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		before      bool // an OPTIONS before the CANCEL in the read
		after       bool // an OPTIONS after it
		stagesCheck bool // the 200 and the 487 must have passed the response stages
	}{
		{name: "alone in its read", stagesCheck: true},
		{name: "first in a read", after: true, stagesCheck: true},
		{name: "after another request in the read", before: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rewrite := fmt.Sprintf("use = \"rewrite\"\napply_to = \"responses\"\nset_header = { %q = \"ran\" }", timersStagesHeader)
			p := startProxy(t, testConfig(rewrite))
			callee := startPhone(t, "uas_ring.xml", calleeIP, "udp")
			registerPhone(t, p, "bob", callee)
			caller := timersTCPPeer(t, "caller", callerIP, p.TCP, nil)

			call := caller.call("bob")
			caller.waitFor("180 Ringing", timersResponse(180, "INVITE"))
			options := caller.build(secReq{Method: "OPTIONS", URI: "sip:" + proxyDomain, From: call.from, To: proxyDomain, NoContact: true},
				"timers-"+secRandom(), secRandom(), 1, "z9hG4bK-timers-"+secRandom())
			data := call.cancelText()
			if tc.before {
				data = options + data
			}
			if tc.after {
				data += options
			}
			caller.send(data) // one write: one read at the proxy, on loopback

			ok := caller.waitFor("final response to the CANCEL", timersFinal("CANCEL"))
			final := caller.waitFor("final response to the INVITE", timersFinal("INVITE"))
			call.ackNon2xx(final.res)
			if tc.before || tc.after {
				if m := caller.waitFor("final response to the OPTIONS", timersFinal("OPTIONS")); m.res.StatusCode != 200 {
					t.Errorf("the OPTIONS to the proxy sent with the CANCEL got %s, want 200", m)
				}
			}
			if ok.res.StatusCode != 200 {
				t.Errorf("the CANCEL got %s, want 200 (RFC 3261 16.10)\n%s", ok, caller.report())
			}
			if final.res.StatusCode != 487 {
				t.Errorf("the INVITE got %s, want 487 Request Terminated (RFC 3261 16.10)\n%s", final, caller.report())
			}
			callee.ExpectCalls(1) // it received the CANCEL, answered, and got the ACK for its 487
			callee.expectOneInvite()

			for _, m := range []timersMsg{ok, final} {
				passed := m.res.GetHeader(timersStagesHeader) != nil
				switch {
				case passed:
				case tc.stagesCheck:
					t.Errorf("the %s skipped the response stages (no %s header): every response sent upstream runs them (docs: DESIGN, the flow of one message)\n%s",
						m, timersStagesHeader, caller.report())
				default:
					t.Logf("known deviation: the %s skipped the response stages (sipgo answered the CANCEL)", m)
				}
			}
		})
	}
}

// TestTimers2xxAfterFinal: the callee rings past Timer C, so the proxy
// cancels its branch and sends 480 upstream; the callee's 200 crosses the
// CANCEL. RFC 3261 16.7 forwards every 2xx, even after a final response:
// the caller gets the 200 after the 480 (sipgo's server transaction, done
// with the 480, would swallow it: the proxy sends it statelessly), and the
// call can be set up and ended through the proxy.
func TestTimers2xxAfterFinal(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(testConfig(), "use = \"forward\"", "use = \"forward\"\ninvite_timeout = \"1s\"", 1)
	p := startProxy(t, cfg)
	callee := timersUDPPeer(t, "callee", calleeIP, p.UDP, timersAnswerOnCancel)
	registerUser(t, p.UDP, "bob", calleeIP, callee.pc.LocalAddr().(*net.UDPAddr).Port, "udp")
	caller := timersUDPPeer(t, "caller", callerIP, p.UDP, nil)

	call := caller.call("bob")
	inv := callee.waitFor("forwarded INVITE", timersRequest("INVITE"))
	callee.reply(inv, 180, "Ringing")
	final := caller.waitFor("480 after Timer C", timersResponse(480, "INVITE"))
	call.ackNon2xx(final.res)
	ok := caller.waitFor("the callee's 200, after the 480", timersResponse(200, "INVITE"))
	call.inDialog("ACK", 1, ok.res)
	callee.waitFor("ACK for the 200", timersRequest("ACK"))
	call.inDialog("BYE", 2, ok.res)
	if bye := caller.waitFor("final response to the BYE", timersFinal("BYE")); bye.res.StatusCode != 200 {
		t.Errorf("the BYE got %s, want 200\n%s\n%s", bye, caller.report(), callee.report())
	}
	if n := len(caller.matching(timersResponse(480, "INVITE"))); n > 1 {
		// A retransmission of the 480 is fine; a second final of another
		// code would not be.
		t.Logf("the 480 came %d times", n)
	}
	for _, m := range caller.matching(timersFinal("INVITE")) {
		if c := m.res.StatusCode; c != 480 && c != 200 {
			t.Errorf("the caller got %s, want only 480 and 200 to the INVITE\n%s", m, caller.report())
		}
	}
}

// TestTimersRFC2543AckOf2xx: an RFC 2543 caller (no branch in its Via)
// calls the callee's own address through the proxy (which relays for it:
// location runs only for our domain), so that the callee's Contact, the
// Request-URI of the ACK of the 200, is the INVITE's Request-URI. RFC 3261
// 17.2.3 matches such requests by Request-URI, From tag, Call-ID, CSeq
// number and top Via: the ACK has all of the INVITE's. But the ACK of a
// 2xx is a transaction of its own, to be relayed to the callee, not taken
// by the INVITE's server transaction as the ACK of a non-2xx answer would
// be.
func TestTimersRFC2543AckOf2xx(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(testConfig(), "use = \"location\"", "use = \"location\"\nwhen = 'request.uri.ours || in_dialog'", 1)
	p := startProxy(t, cfg)
	callee := timersUDPPeer(t, "callee", calleeIP, p.UDP, nil)
	caller := timersUDPPeer(t, "caller", callerIP, p.UDP, nil)
	noBranch := func(text string) string {
		out := strings.Replace(text, ";branch=rfc2543;rport", ";rport", 1)
		if out == text {
			t.Fatalf("no branch to take out of\n%s", text)
		}
		return out
	}
	uri := "sip:bob@" + callee.ua.local
	callID, tag := "rfc2543-"+secRandom(), secRandom()
	invite := secReq{Method: "INVITE", URI: uri, From: "alice@" + proxyDomain, To: "bob@" + proxyDomain}
	caller.send(noBranch(caller.build(invite, callID, tag, 1, "rfc2543")))
	inv := callee.waitFor("the INVITE, relayed", timersRequest("INVITE"))
	callee.reply(inv, 200, "OK")
	ok := caller.waitFor("the 200", timersResponse(200, "INVITE"))
	if c := ok.res.Contact(); c == nil || c.Address.String() != uri {
		t.Fatalf("the 200's Contact is %v, want %s: the ACK's Request-URI must be the INVITE's", c, uri)
	}
	var routes []string
	for _, h := range ok.res.GetHeaders("Record-Route") {
		routes = append(routes, strings.TrimSpace(h.Value()))
	}
	slices.Reverse(routes)
	ack := secReq{Method: "ACK", URI: uri, From: invite.From, To: invite.To, ToTag: secToTag(ok.res), Route: strings.Join(routes, ", "), NoContact: true}
	caller.send(noBranch(caller.build(ack, callID, tag, 1, "rfc2543")))
	got := callee.waitFor("the ACK of the 200, relayed", timersRequest("ACK"))
	if !strings.HasPrefix(timersBranch(got.req), sip.RFC3261BranchMagicCookie) {
		t.Errorf("the relayed ACK has no branch of the proxy's:\n%s", got.req)
	}
	// A retransmission of the INVITE is still the INVITE's transaction:
	// no second INVITE reaches the callee.
	caller.send(noBranch(caller.build(invite, callID, tag, 1, "rfc2543")))
	time.Sleep(300 * time.Millisecond)
	if n := len(callee.matching(timersRequest("INVITE"))); n != 1 {
		t.Errorf("the callee got %d INVITEs, want 1 (a retransmission is absorbed)\n%s", n, callee.report())
	}
}
