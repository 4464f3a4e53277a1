package engine

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// registerFlow registers the phone's connection as the RFC 5626 flow
// regID of its instance, and checks the 200's Require: outbound.
func (p *wsPhone) registerFlow(regID string) {
	p.t.Helper()
	callID := "flow-reg-" + regID
	reg := p.build(sip.REGISTER, "sip:example.org", "sip:"+p.name+"@example.org", callID, "Expires: 300", "Supported: outbound, path")
	reg.RemoveHeader("Contact")
	reg.AppendHeader(sip.NewHeader("Contact", "<"+p.contact()+";ob>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\";reg-id="+regID))
	p.send(reg)
	res := p.wait("200 to the REGISTER", "SIP/2.0 200", "Call-ID: "+callID)
	if !strings.Contains(res, "Require: outbound") {
		p.t.Errorf("the 200 to a REGISTER with reg-id lacks Require: outbound:\n%s", res)
	}
}

// TestOutboundFlows registers one phone instance over two TCP
// connections, as the flows 1 and 2 of RFC 5626: a request for it goes
// over the newer flow only; once that connection is gone, over the older
// one; once both are gone it gets 430 Flow Failed.
func TestOutboundFlows(t *testing.T) {
	c, bob := flowCore(t, productChain)
	flows := c.tcpFlows(t, "alice", "1", "2")
	first, second := flows[0], flows[1]

	message := func(callID string, want int) {
		t.Helper()
		msg := bob.build(sip.MESSAGE, "sip:alice@example.org", "sip:alice@example.org", callID, 1)
		bob.send(c.addr, msg)
		if res := bob.waitResponse(msg, 200); res.StatusCode != want {
			t.Errorf("MESSAGE %s answered %d %s, want %d", callID, res.StatusCode, res.Reason, want)
		}
	}
	message("to-newest", 200)
	second.wait("the MESSAGE over the newer flow", "MESSAGE sip:alice@", "Call-ID: to-newest")

	second.conn.Close()
	poll(t, "the newer flow's connection released", func() bool { return c.e.guard.Open() == 1 })
	message("to-older", 200)
	first.wait("the MESSAGE over the older flow", "MESSAGE sip:alice@", "Call-ID: to-older")
	first.mu.Lock()
	for _, s := range first.texts {
		if strings.Contains(s, "Call-ID: to-newest") {
			t.Errorf("the older flow got the MESSAGE its instance's newer flow took:\n%s", s)
		}
	}
	first.mu.Unlock()

	first.conn.Close()
	poll(t, "every flow's connection released", func() bool { return c.e.guard.Open() == 0 })
	message("to-none", 430)
	c.idle(t)
}
