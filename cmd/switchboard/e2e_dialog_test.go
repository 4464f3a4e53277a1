package main

// End-to-end tests of dialog tracking (docs/security.md, "Toll fraud
// through a replayed route"): a caller from another domain, who needs no
// password to call our users, keeps the proxy's signed Record-Route and
// replays it in requests of its own making. The proxy must relay an
// in-dialog request only within a dialog it saw established, and only
// towards that dialog's ends.

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// dlgCalleeTag is the To tag the dialog tests' phone answers with.
const dlgCalleeTag = "callee-1"

// dlgPhone is our user's phone: it rings (180) on INVITE, answers 200 too
// when answer is set, answers a CANCEL with 200 and 487, and any other
// request but ACK with 200. It records every request.
type dlgPhone struct {
	*secPhone
	answer bool
}

func dlgStartPhone(t *testing.T, ip string, answer bool) *dlgPhone {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ph := &dlgPhone{secPhone: &secPhone{IP: ip, Port: pc.LocalAddr().(*net.UDPAddr).Port, pc: pc, done: make(chan struct{})}, answer: answer}
	contact := fmt.Sprintf("<sip:alice@%s>", ph.Addr())
	var mu sync.Mutex
	invites := map[string]*sip.Request{} // Call-ID -> INVITE ringing
	go func() {
		defer close(ph.done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(slices.Clone(buf[:n]))
			if err != nil {
				continue
			}
			req, ok := msg.(*sip.Request)
			if !ok {
				continue
			}
			ph.mu.Lock()
			ph.got = append(ph.got, req)
			ph.mu.Unlock()
			send := func(r *sip.Request, code int, reason string) {
				res := sip.NewResponseFromRequest(r, code, reason, nil)
				if !r.To().Params.Has("tag") {
					res.To().Params.Add("tag", dlgCalleeTag) // sipgo made one of its own
				}
				if code > 100 && code < 300 {
					res.AppendHeader(sip.NewHeader("Contact", contact))
				}
				_, _ = pc.WriteTo([]byte(res.String()), from)
			}
			switch {
			case req.IsAck():
			case req.IsInvite() && !req.To().Params.Has("tag"):
				send(req, 180, "Ringing")
				if ph.answer {
					send(req, 200, "OK")
				} else {
					mu.Lock()
					invites[req.CallID().Value()] = req
					mu.Unlock()
				}
			case req.IsCancel():
				send(req, 200, "OK")
				mu.Lock()
				inv := invites[req.CallID().Value()]
				delete(invites, req.CallID().Value())
				mu.Unlock()
				if inv != nil {
					send(inv, 487, "Request Terminated")
				}
			default:
				send(req, 200, "OK")
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-ph.done
	})
	return ph
}

// dlgCall is a call from a raw UDP caller, with what the caller keeps of
// it: the Call-ID, its tag, the callee's tag and Contact, and the Route
// set from the Record-Route of the callee's response.
type dlgCall struct {
	ua       *secUA
	callID   string
	fromTag  string
	from, to string
	toTag    string
	target   string
	routes   []string
	cseq     int
	invite   string // the INVITE as sent, for the CANCEL
	inviteBr string
}

// dlgInvite sends an INVITE from ua to user@proxyDomain and reads
// responses until one with a To tag and Record-Route (and, with final, a
// final one).
func dlgInvite(t *testing.T, ua *secUA, from, user string, final bool) *dlgCall {
	t.Helper()
	return dlgInviteContact(t, ua, from, user, "", final)
}

// dlgInviteContact is dlgInvite with the caller's Contact (the UA's own
// address when empty).
func dlgInviteContact(t *testing.T, ua *secUA, from, user, contact string, final bool) *dlgCall {
	t.Helper()
	return dlgInviteTo(t, ua, from, user+"@"+proxyDomain, contact, final)
}

// dlgInviteTo is dlgInviteContact to the address to (user@domain).
func dlgInviteTo(t *testing.T, ua *secUA, from, to, contact string, final bool) *dlgCall {
	t.Helper()
	c := &dlgCall{ua: ua, callID: "dlg-" + secRandom(), fromTag: secRandom(), from: from, to: to, cseq: 1}
	c.inviteBr = "z9hG4bK-dlg-" + secRandom()
	c.invite = ua.build(secReq{Method: "INVITE", URI: "sip:" + c.to, From: from, To: c.to, Contact: contact}, c.callID, c.fromTag, 1, c.inviteBr, "")
	if _, err := ua.pc.WriteTo([]byte(c.invite), ua.proxy); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(secWait)
	buf := make([]byte, 65535)
	for {
		_ = ua.pc.SetReadDeadline(deadline)
		n, _, err := ua.pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("the call to %s: no answer with a To tag and Record-Route (final: %v)", to, final)
		}
		msg, err := sip.ParseMessage(slices.Clone(buf[:n]))
		res, ok := msg.(*sip.Response)
		if err != nil || !ok || res.CallID().Value() != c.callID || res.StatusCode == 100 {
			continue
		}
		c.toTag = secToTag(res)
		if ct := res.Contact(); ct != nil {
			c.target = ct.Address.String()
		}
		c.routes = nil
		for _, h := range res.GetHeaders("Record-Route") {
			c.routes = append(c.routes, h.Value())
		}
		if len(c.routes) > 0 && (!final || res.StatusCode >= 200) {
			return c
		}
	}
}

// send sends a request in the call (or replayed from it) and returns the
// codes of its responses. uri, toTag and routes default to the call's.
func (c *dlgCall) send(method, uri, toTag string, routes []string) []int {
	c.ua.t.Helper()
	if uri == "" {
		uri = c.target
	}
	if toTag == "" {
		toTag = c.toTag
	}
	if routes == nil {
		routes = c.routes
	}
	if method != "ACK" {
		c.cseq++ // an ACK takes its INVITE's number
	}
	req := c.ua.build(secReq{Method: method, URI: uri, From: c.from, To: c.to, ToTag: toTag, Route: strings.Join(routes, ", ")},
		c.callID, c.fromTag, c.cseq, "z9hG4bK-dlg-"+secRandom(), "")
	if _, err := c.ua.pc.WriteTo([]byte(req), c.ua.proxy); err != nil {
		c.ua.t.Fatal(err)
	}
	if method == "ACK" {
		return nil
	}
	var res secResult
	c.ua.final(c.callID, c.cseq, &res)
	if res.Final != nil && res.Final.StatusCode >= 300 && method == "INVITE" {
		ack := c.ua.build(secReq{Method: "ACK", URI: uri, From: c.from, To: c.to, ToTag: secToTag(res.Final), Route: strings.Join(routes, ", ")},
			c.callID, c.fromTag, c.cseq, "z9hG4bK-dlg-ack", "")
		_, _ = c.ua.pc.WriteTo([]byte(ack), c.ua.proxy)
	}
	return res.Codes
}

// cancel cancels the call's INVITE and waits for its 487.
func (c *dlgCall) cancel(t *testing.T) {
	t.Helper()
	cancel := strings.Replace(c.invite, "INVITE sip:", "CANCEL sip:", 1)
	cancel = strings.Replace(cancel, "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
	if _, err := c.ua.pc.WriteTo([]byte(cancel), c.ua.proxy); err != nil {
		t.Fatal(err)
	}
	var res secResult
	for !slices.Contains(res.Codes, 487) {
		if c.ua.final(c.callID, 1, &res) == nil {
			t.Fatalf("CANCEL: responses %v, want the INVITE's 487", res.Codes)
		}
	}
	ack := strings.Replace(c.invite, "INVITE sip:", "ACK sip:", 1)
	ack = strings.Replace(ack, "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
	ack = strings.Replace(ack, "To: <sip:"+c.to+">", "To: <sip:"+c.to+">;tag="+c.toTag, 1)
	_, _ = c.ua.pc.WriteTo([]byte(ack), c.ua.proxy)
}

func dlgLast(codes []int) int {
	if len(codes) == 0 {
		return 0
	}
	return codes[len(codes)-1]
}

// dlgScene is what each dialog test starts with: a proxy with
// secure.toml, alice's phone (ringing only, or answering too), a gateway
// of another domain and its toll number, and a caller from another domain.
type dlgScene struct {
	p       *proxy
	phone   *dlgPhone
	gateway *secPhone
	toll    string
	ua      *secUA
}

func dlgStart(t *testing.T, answer bool) *dlgScene {
	t.Helper()
	s := &dlgScene{p: secStartProxy(t, false), phone: dlgStartPhone(t, calleeIP, answer), gateway: secStartPhone(t, secForeignIP)}
	secRegister(t, s.p, "alice", s.phone.secPhone)
	s.toll = "sip:+19005550100@" + s.gateway.Addr()
	s.ua = secNewUA(t, callerIP, s.p.UDP)
	return s
}

// answeredCall is a call from a caller of another domain to alice,
// answered and acknowledged.
func (s *dlgScene) answeredCall(t *testing.T) *dlgCall {
	t.Helper()
	call := dlgInvite(t, s.ua, "mallory@evil.test", "alice", true)
	call.send("ACK", "", "", nil)
	return call
}

// gatewayUntouched fails the test if the gateway received anything.
func (s *dlgScene) gatewayUntouched(t *testing.T) {
	t.Helper()
	if got := s.gateway.received(); len(got) > 0 {
		t.Errorf("the gateway received %q, want nothing", got)
	}
}

// TestSecurityReplayedRoute is the toll fraud of issue 14: a caller from
// another domain calls our user (no password needed), keeps the signed
// Record-Route of the 180, cancels, and sends INVITEs with the same
// Call-ID and From tag, a To tag, that Route and a gateway's URI as
// Request-URI. Before dialog tracking the proxy relayed them to the
// gateway every time.
func TestSecurityReplayedRoute(t *testing.T) {
	t.Parallel()
	sc := dlgStart(t, false)
	toll, ua := sc.toll, sc.ua

	call := dlgInvite(t, ua, "mallory@evil.test", "alice", false)
	call.cancel(t)
	for i, toTag := range []string{"any-tag", dlgCalleeTag} {
		codes := call.send("INVITE", toll, toTag, nil)
		if dlgLast(codes) != 481 {
			t.Errorf("replay %d (To tag %s) after CANCEL: codes %v, want 481", i, toTag, codes)
		}
	}
	sc.gatewayUntouched(t)
}

// TestDialogEnds: within an established dialog, requests go between its
// two ends and nowhere else, and nothing goes once it ended.
func TestDialogEnds(t *testing.T) {
	t.Parallel()
	sc := dlgStart(t, true)
	phone, gateway, toll := sc.phone, sc.gateway, sc.toll
	call := sc.answeredCall(t)

	steps := []struct {
		name        string
		method, uri string
		toTag       string
		routes      []string
		code        int
		phoneGets   bool
	}{
		{"a re-INVITE to the callee", "INVITE", "", "", nil, 200, true},
		{"an INFO to the callee", "INFO", "", "", nil, 200, true},
		{"an INVITE in the dialog to a gateway", "INVITE", toll, "", nil, 403, false},
		{"a MESSAGE in the dialog to a gateway", "MESSAGE", toll, "", nil, 403, false},
		{"the callee's Contact, a Route to the gateway after ours", "INVITE", "", "", append(slices.Clone(call.routes), "<sip:"+gateway.Addr()+";lr>"), 403, false},
		{"another To tag", "INVITE", toll, "other-tag", nil, 481, false},
		{"the BYE", "BYE", "", "", nil, 200, true},
		{"after the BYE, to the callee", "INVITE", "", "", nil, 481, false},
		{"after the BYE, to the gateway", "INVITE", toll, "", nil, 481, false},
	}
	for i, s := range steps {
		before := len(phone.received())
		codes := call.send(s.method, s.uri, s.toTag, s.routes)
		if s.method == "INVITE" && dlgLast(codes) == 200 {
			call.send("ACK", "", "", nil)
		}
		if dlgLast(codes) != s.code {
			t.Errorf("step %d (%s): codes %v, want %d", i, s.name, codes, s.code)
		}
		got := phone.received()[before:]
		if reached := slices.Contains(got, s.method); reached != s.phoneGets {
			t.Errorf("step %d (%s): the phone received %q, want the request: %v", i, s.name, got, s.phoneGets)
		}
	}
	sc.gatewayUntouched(t)
}

// TestDialogSurvivesReloadAndRestart: a dialog established before a
// reload and a restart still carries its requests between its ends after
// them, and is still refused to anyone else; one that ended before a
// restart stays ended.
func TestDialogSurvivesReloadAndRestart(t *testing.T) {
	t.Parallel()
	sc := dlgStart(t, true)
	p, toll := sc.p, sc.toll
	call := sc.answeredCall(t)

	// A reload with a changed config: the dialog lives outside pipelines.
	cfg, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ConfigPath, append(cfg, "\n# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !p.logSays("outcome=applied", 5*time.Second) {
		t.Fatal("no applied reload in the log")
	}
	if codes := call.send("INFO", "", "", nil); dlgLast(codes) != 200 {
		t.Errorf("INFO after the reload: codes %v, want 200", codes)
	}

	p = p.restart(t)
	if codes := call.send("INVITE", "", "", nil); dlgLast(codes) != 200 {
		t.Errorf("re-INVITE after the restart: codes %v, want 200", codes)
	} else {
		call.send("ACK", "", "", nil)
	}
	if codes := call.send("INVITE", toll, "", nil); dlgLast(codes) != 403 {
		t.Errorf("INVITE to a gateway after the restart: codes %v, want 403", codes)
	}
	if codes := call.send("BYE", "", "", nil); dlgLast(codes) != 200 {
		t.Errorf("BYE after the restart: codes %v, want 200", codes)
	}

	p.restart(t) // stopped when the test ends
	if codes := call.send("INVITE", "", "", nil); dlgLast(codes) != 481 {
		t.Errorf("re-INVITE after the BYE and a restart: codes %v, want 481", codes)
	}
	sc.gatewayUntouched(t)
}

// dlgSend sends a request written by hand from ua, without waiting.
func dlgSend(t *testing.T, ua *secUA, r secReq, callID, fromTag string, cseq int) {
	t.Helper()
	req := ua.build(r, callID, fromTag, cseq, "z9hG4bK-dlg-"+secRandom(), "")
	if _, err := ua.pc.WriteTo([]byte(req), ua.proxy); err != nil {
		t.Fatal(err)
	}
}

// dlgGot waits for ua to receive a request of method, and reports whether
// it did within secWait.
func dlgGot(ua *secUA, method string) bool {
	deadline := time.Now().Add(secWait)
	buf := make([]byte, 65535)
	for {
		_ = ua.pc.SetReadDeadline(deadline)
		n, _, err := ua.pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		if msg, err := sip.ParseMessage(slices.Clone(buf[:n])); err == nil {
			if req, ok := msg.(*sip.Request); ok && string(req.Method) == method {
				return true
			}
		}
	}
}

// TestDialogContactNamesGateway: a caller from another domain gives a
// gateway's URI as its Contact, our user answers, and the caller sends a
// request as if from our user (the tags swapped, from another port of our
// user's address) to its own Contact. The request must reach the end that
// wrote the Contact, at the address it called from, never the gateway;
// and our user's own requests to the caller still reach it.
func TestDialogContactNamesGateway(t *testing.T) {
	t.Parallel()
	sc := dlgStart(t, true)
	p, phone, toll, ua := sc.p, sc.phone, sc.toll, sc.ua
	call := dlgInviteContact(t, ua, "mallory@evil.test", "alice", toll, true)
	call.send("ACK", "", "", nil)

	forger := secNewUA(t, calleeIP, p.UDP)
	dlgSend(t, forger, secReq{Method: "MESSAGE", URI: toll, From: call.to, To: call.from, ToTag: call.fromTag,
		Route: strings.Join(call.routes, ", "), Contact: "sip:alice@" + phone.Addr()}, call.callID, call.toTag, 7)
	if !dlgGot(ua, "MESSAGE") {
		var res secResult
		forger.final(call.callID, 7, &res)
		t.Errorf("the MESSAGE sent as our user's did not reach the caller's address (answered %v)", res.Codes)
	}
	sc.gatewayUntouched(t)
}

// TestDialogPendingSubscribe: after a cancelled call, the caller sends a
// SUBSCRIBE with the same Call-ID and tag and a gateway's URI as Contact,
// to a user whose phone never answers, then a NOTIFY as if from the
// notifier, to that Contact. While a SUBSCRIBE waits for its 2xx, its
// NOTIFYs are let through to its sender, at the address it came from:
// never to the gateway.
func TestDialogPendingSubscribe(t *testing.T) {
	t.Parallel()
	sc := dlgStart(t, false)
	toll, ua := sc.toll, sc.ua
	silent, err := net.ListenPacket("udp4", net.JoinHostPort(callee2IP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	secRegister(t, sc.p, "bob", &secPhone{IP: callee2IP, Port: silent.LocalAddr().(*net.UDPAddr).Port})
	call := dlgInvite(t, ua, "mallory@evil.test", "alice", false)
	call.cancel(t)

	dlgSend(t, ua, secReq{Method: "SUBSCRIBE", URI: "sip:bob@" + proxyDomain, From: call.from, To: "bob@" + proxyDomain, Contact: toll},
		call.callID, call.fromTag, 9)
	var res secResult
	call.ua.final(call.callID, 9, &res) // 100 Trying at most: bob never answers
	dlgSend(t, ua, secReq{Method: "NOTIFY", URI: toll, From: "bob@" + proxyDomain, To: call.from, ToTag: call.fromTag,
		Route: strings.Join(call.routes, ", ")}, call.callID, "notifier", 1)
	if !dlgGot(ua, "NOTIFY") {
		t.Errorf("the NOTIFY did not reach the subscriber's address")
	}
	sc.gatewayUntouched(t)
}
