package engine

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestCoreLoops sends requests that come back to the proxy, by their
// bindings or through another proxy, and checks Max-Forwards and the loop
// detection (RFC 3261 16.3 step 4, pipeline.LoopHash): a request that
// comes back unchanged has looped (482), one that comes back changed is
// spiralling and is served.
func TestCoreLoops(t *testing.T) {
	c := newCore(t, productChain)
	callee := newPhone(t, "carol", answering(nil, 486))
	c.register(callee, "carol")
	// app is another proxy, an application server: what it gets for
	// "app" it sends back to the proxy for carol.
	app := newPhone(t, "app", nil)
	c.register(app, "app")
	c.bind(callee, "loop", c.uri("loop"))
	c.bind(callee, "alias", c.uri("carol"))

	tests := []struct {
		name   string
		method sip.RequestMethod
		ruri   string
		maxFwd int
		// via is how many Vias the callee's INVITE has (0: it gets none).
		via  int
		code int
	}{
		{name: "Max-Forwards 1 is relayed as 0", method: sip.INVITE, ruri: "sip:carol@example.org", maxFwd: 1, via: 2, code: 486},
		{name: "Max-Forwards 0: 483", method: sip.INVITE, ruri: "sip:carol@example.org", maxFwd: 0, code: 483},
		{name: "an OPTIONS to the proxy with Max-Forwards 0 is answered", method: sip.OPTIONS, ruri: c.uri(""), maxFwd: 0, code: 200},
		{name: "a binding that leads back to the proxy unchanged: 482", method: sip.INVITE, ruri: "sip:loop@example.org", maxFwd: 70, code: 482},
		{name: "a spiral through another proxy that retargets", method: sip.INVITE, ruri: "sip:app@example.org", maxFwd: 70, via: 4, code: 486},
		{name: "a spiral through the proxy itself (an alias)", method: sip.INVITE, ruri: "sip:alias@example.org", maxFwd: 70, via: 3, code: 486},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("loop-%d", i)
			caller := newPhone(t, "alice", nil)
			req := caller.build(tc.method, tc.ruri, tc.ruri, id, 1)
			*req.MaxForwards() = sip.MaxForwardsHeader(tc.maxFwd)
			caller.send(c.addr, req)
			if tc.ruri == "sip:app@example.org" {
				// The application server sends the INVITE back,
				// retargeted, with its own Via on top, and answers
				// the proxy with what it gets for it.
				got, from := app.waitRequest(sip.INVITE, id, 1)
				back := got.Clone()
				back.Recipient = sip.Uri{Scheme: "sip", User: "carol", Host: "example.org"}
				back.MaxForwards().Dec()
				via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: app.conn.LocalAddr().(*net.UDPAddr).Port, Params: sip.NewParams()}
				via.Params.Add("branch", sip.GenerateBranch())
				back.PrependHeader(via)
				app.send(c.addr, back)
				res := app.waitResponse(back, 200)
				app.send(c.addr, ackOf(back, res))
				app.reply(got, from, res.StatusCode)
			}
			final := caller.waitResponse(req, 200)
			if final.StatusCode != tc.code {
				t.Errorf("%s answered %d %s, want %d", tc.method, final.StatusCode, final.Reason, tc.code)
			}
			if tc.method == sip.INVITE {
				caller.send(c.addr, ackOf(req, final))
			}
			c.idle(t)
			callee.sync()
			got := callee.find(requestsOf(sip.INVITE, id))
			if (len(got) > 0) != (tc.via > 0) {
				t.Fatalf("the callee got the INVITE: %v, want %v; the caller read:\n%s", len(got) > 0, tc.via > 0, caller.dump())
			}
			if tc.via == 0 {
				return
			}
			inv := got[0].msg.(*sip.Request)
			if n := len(inv.GetHeaders("Via")); n != tc.via {
				t.Errorf("the callee's INVITE has %d Vias, want %d:\n%s", n, tc.via, inv)
			}
			if want := max(tc.maxFwd-tc.via+1, 0); int(inv.MaxForwards().Val()) != want {
				t.Errorf("the callee's INVITE has Max-Forwards %d, want %d", inv.MaxForwards().Val(), want)
			}
		})
	}
}

// TestCoreLoopWithoutDetection checks that with check_loops off a loop
// still ends, at Max-Forwards (483 Too Many Hops).
func TestCoreLoopWithoutDetection(t *testing.T) {
	c := newCore(t, strings.Replace(productChain, `use = "parse"`, `use = "parse"`+"\ncheck_loops = false", 1))
	callee := newPhone(t, "carol", nil)
	c.bind(callee, "loop", c.uri("loop"))
	caller := newPhone(t, "alice", nil)
	req := caller.build(sip.INVITE, "sip:loop@example.org", "sip:loop@example.org", "loop-nodetect", 1)
	*req.MaxForwards() = 5
	caller.send(c.addr, req)
	if final := caller.waitResponse(req, 200); final.StatusCode != 483 {
		t.Errorf("INVITE answered %d %s, want 483", final.StatusCode, final.Reason)
	} else {
		caller.send(c.addr, ackOf(req, final))
	}
}
