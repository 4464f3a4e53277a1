package engine

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestFlowClosed sends requests to phones that close their connection as
// soon as they read the request. Unanswered: the proxy learns of the
// close only after the write succeeded, and must end the branch at once
// (430 for an RFC 5626 flow, else 480), not wait for Timer B or F (32 s,
// past the harness's wait). Answered first: the answer goes through.
func TestFlowClosed(t *testing.T) {
	c := newCoreOn(t, wsSections, productChain, Options{}, "tcp://127.0.0.1:0", "ws://127.0.0.1:0/sip")
	bob := newPhone(t, "bob", answering(nil, 200))
	c.register(bob, "bob")
	tests := []struct {
		transport string
		outbound  bool
		method    sip.RequestMethod
		answer    int // the phone's answer before it closes, -1 for none
		want      int
	}{
		{"TCP", true, sip.MESSAGE, -1, 430},
		{"TCP", false, sip.INVITE, -1, 480},
		{"WS", false, sip.MESSAGE, -1, 480},
		{"WS", true, sip.INVITE, -1, 430},
		{"TCP", true, sip.MESSAGE, 200, 200},
		{"TCP", false, sip.INVITE, 486, 486},
		{"WS", true, sip.INVITE, 603, 603},
	}
	for i, tc := range tests {
		name := "p" + strconv.Itoa(i)
		var p *wsPhone
		if tc.transport == "TCP" {
			p = dialTCPPhone(t, c.e.testAddr("TCP"), name)
		} else {
			p = dialWS(t, c.e.testAddr("WS"), name)
		}
		if tc.outbound {
			p.registerFlow("1")
		} else {
			p.send(p.build(sip.REGISTER, "sip:example.org", "sip:"+name+"@example.org", name+"-reg", "Expires: 300"))
			p.wait("200 to the REGISTER", "SIP/2.0 200", "CSeq: 1 REGISTER")
		}
		p.mu.Lock()
		p.hangUp = tc.answer
		p.mu.Unlock()

		callID := name + "-" + string(tc.method)
		req := bob.build(tc.method, "sip:"+name+"@example.org", "sip:"+name+"@example.org", callID, 1)
		bob.send(c.addr, req)
		p.wait("the request", string(tc.method)+" sip:"+name+"@", "Call-ID: "+callID)
		if res := bob.waitResponse(req, 200); res.StatusCode != tc.want {
			t.Errorf("%s to a %s phone (outbound %v) that answered %d and closed its connection: %d %s, want %d",
				tc.method, tc.transport, tc.outbound, tc.answer, res.StatusCode, res.Reason, tc.want)
		}
	}
	c.idle(t)
}

// flowCore runs the product's chain (or chain) with a TCP listener, and
// a UDP phone bob registered to call from.
func flowCore(t *testing.T, chain string) (*core, *phone) {
	t.Helper()
	c := newCoreOn(t, wsSections, chain, Options{}, "tcp://127.0.0.1:0")
	bob := newPhone(t, "bob", answering(nil, 200))
	c.register(bob, "bob")
	return c, bob
}

// tcpFlows connects a phone of user over TCP once per reg-id, each
// connection registered as that RFC 5626 flow of one instance.
func (c *core) tcpFlows(t *testing.T, user string, regIDs ...string) []*wsPhone {
	t.Helper()
	var flows []*wsPhone
	for _, id := range regIDs {
		p := dialTCPPhone(t, c.e.testAddr("TCP"), user)
		p.registerFlow(id)
		flows = append(flows, p)
	}
	return flows
}

// TestFlowClosedOtherFlow registers one phone instance over two TCP
// connections (RFC 5626 flows 1 and 2): when the newer closes as the
// request is written to it, unanswered, the request goes on over the
// older (RFC 5626 7), and the caller gets that flow's answer.
func TestFlowClosedOtherFlow(t *testing.T) {
	c, bob := flowCore(t, productChain)
	flows := c.tcpFlows(t, "alice", "1", "2")
	older, newer := flows[0], flows[1]
	newer.mu.Lock()
	newer.hangUp = -1
	newer.mu.Unlock()

	msg := bob.build(sip.MESSAGE, "sip:alice@example.org", "sip:alice@example.org", "other-flow", 1)
	bob.send(c.addr, msg)
	newer.wait("the MESSAGE over the newer flow", "MESSAGE sip:alice@", "Call-ID: other-flow")
	older.wait("the MESSAGE over the older flow", "MESSAGE sip:alice@", "Call-ID: other-flow")
	if res := bob.waitResponse(msg, 200); res.StatusCode != 200 {
		t.Errorf("MESSAGE answered %d %s, want the older flow's 200", res.StatusCode, res.Reason)
	}
	c.idle(t)
}

// TestFlowClosedLateAnswer is a phone that closes its connection on an
// INVITE, unanswered, and answers it 200 over a new one (RFC 3261
// 18.2.2): the caller keeps its 480 and never hears the 200, which the
// proxy ACKs and hangs up.
func TestFlowClosedLateAnswer(t *testing.T) {
	c, bob := flowCore(t, productChain)
	p := dialTCPPhone(t, c.e.testAddr("TCP"), "late")
	p.send(p.build(sip.REGISTER, "sip:example.org", "sip:late@example.org", "late-reg", "Expires: 300"))
	p.wait("200 to the REGISTER", "SIP/2.0 200", "CSeq: 1 REGISTER")
	p.mu.Lock()
	p.hangUp = -1
	p.mu.Unlock()

	inv := bob.build(sip.INVITE, "sip:late@example.org", "sip:late@example.org", "late-invite", 1)
	bob.send(c.addr, inv)
	text := p.wait("the INVITE", "INVITE sip:late@", "Call-ID: late-invite")
	res := bob.waitResponse(inv, 200)
	if res.StatusCode != 480 {
		t.Fatalf("INVITE answered %d %s, want 480", res.StatusCode, res.Reason)
	}
	bob.send(c.addr, ackOf(inv, res))

	msg, err := sip.ParseMessage([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	again := dialTCPPhone(t, c.e.testAddr("TCP"), "late")
	ok := sip.NewResponseFromRequest(msg.(*sip.Request), 200, "OK", nil)
	ok.To().Params.Add("tag", "tag-late")
	ok.AppendHeader(sip.NewHeader("Contact", "<"+again.contact()+">"))
	again.send(ok)
	again.wait("the ACK of the late 200", "ACK sip:late@", "Call-ID: late-invite")
	again.wait("the BYE of the late 200", "BYE sip:late@", "Call-ID: late-invite")
	for _, code := range bob.codes(inv) {
		if code == 200 {
			t.Errorf("the caller got the late 200 after its 480: %v", bob.codes(inv))
		}
	}
}

// TestFlowAnswers registers one phone instance over two TCP flows and has
// the newer answer the request itself, after a wait past the forward
// stage's failover_timeout: the request moves to the older flow only on
// 408 or 430 (RFC 5626 7); a slow answer or any other one is the phone's,
// and it never gets the request twice.
func TestFlowAnswers(t *testing.T) {
	tests := []struct {
		code      int
		delay     time.Duration
		want      int  // the caller's answer
		wantOlder bool // whether the older flow gets the request
	}{
		{200, 300 * time.Millisecond, 200, false},
		{486, 0, 486, false},
		{503, 0, 500, false},
		{430, 0, 200, true},
		{408, 0, 200, true},
	}
	chain := lookupChain + "[[stage]]\nuse = \"record_route\"\n[[stage]]\nuse = \"forward\"\nfailover_timeout = \"100ms\"\n"
	c, bob := flowCore(t, chain)
	for i, tc := range tests {
		user := "flows" + strconv.Itoa(i)
		flows := c.tcpFlows(t, user, "1", "2")
		older, newer := flows[0], flows[1]
		newer.mu.Lock()
		newer.code, newer.delay = tc.code, tc.delay
		newer.mu.Unlock()

		callID := "flow-answers-" + strconv.Itoa(i)
		msg := bob.build(sip.MESSAGE, "sip:"+user+"@example.org", "sip:"+user+"@example.org", callID, 1)
		bob.send(c.addr, msg)
		if res := bob.waitResponse(msg, 200); res.StatusCode != tc.want {
			t.Errorf("the newer flow answered %d: the caller got %d %s, want %d", tc.code, res.StatusCode, res.Reason, tc.want)
		}
		c.idle(t)
		older.mu.Lock()
		got := slices.ContainsFunc(older.texts, func(s string) bool { return strings.Contains(s, "Call-ID: "+callID) })
		older.mu.Unlock()
		if got != tc.wantOlder {
			t.Errorf("the newer flow answered %d after %v: the older flow got the request %v, want %v", tc.code, tc.delay, got, tc.wantOlder)
		}
	}
}

// TestFlowClosedAfterCancel: the caller cancels an INVITE its callee's
// flow has not answered, and the flow then closes: the caller gets 487,
// not 430.
func TestFlowClosedAfterCancel(t *testing.T) {
	c, bob := flowCore(t, productChain)
	p := c.tcpFlows(t, "quiet", "1")[0]
	p.mu.Lock()
	p.code = -1
	p.mu.Unlock()

	inv := bob.build(sip.INVITE, "sip:quiet@example.org", "sip:quiet@example.org", "cancel-flow", 1)
	bob.send(c.addr, inv)
	p.wait("the INVITE", "INVITE sip:quiet@", "Call-ID: cancel-flow")
	bob.send(c.addr, cancelOf(inv))
	if res := bob.waitResponse(cancelOf(inv), 200); res.StatusCode != 200 {
		t.Fatalf("CANCEL answered %d", res.StatusCode)
	}
	_ = p.conn.Close()
	if res := bob.waitResponse(inv, 300); res.StatusCode != 487 {
		t.Errorf("the cancelled INVITE was answered %d %s, want 487", res.StatusCode, res.Reason)
	}
}
