package engine

import (
	"strconv"
	"testing"

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
