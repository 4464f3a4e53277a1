package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// call sets up a dialog from caller to callee (registered as user) through
// the proxy: INVITE, 200, ACK. It returns the 200 the caller got and the
// INVITE the callee got.
func (c *core) call(t *testing.T, caller, callee *phone, user, id string) (*sip.Response, *sip.Request) {
	t.Helper()
	inv := caller.call(c, user, id)
	ok := caller.waitResponse(inv, 200)
	if ok.StatusCode != 200 {
		t.Fatalf("INVITE answered %d", ok.StatusCode)
	}
	branch, _ := callee.waitRequest(sip.INVITE, id, 1)
	caller.send(c.addr, caller.inDialog(sip.ACK, ok, 1))
	callee.waitRequest(sip.ACK, id, 1)
	return ok, branch
}

// TestCoreInDialog sends requests within a dialog the proxy record-routed,
// some of them forged, and checks route processing (RFC 3261 16.4) and the
// dialog checks: what is relayed reaches the other end with the proxy's
// Route taken off; what is not gets the answer that says why.
func TestCoreInDialog(t *testing.T) {
	c := newCore(t, productChain)
	tests := []struct {
		name       string
		method     sip.RequestMethod
		fromCallee bool // the callee sends it, to the caller
		change     func(req *sip.Request, ours sip.Uri)
		bye        bool // the caller hangs up first
		code       int
		reason     string // the start of the answer's reason phrase
		relayed    bool
	}{
		{name: "our Route on top is taken off", method: sip.INFO, code: 200, relayed: true},
		{name: "from the callee to the caller", method: sip.INFO, fromCallee: true, code: 200, relayed: true},
		{name: "a strict router upstream: the Request-URI is our Record-Route", method: sip.INFO, code: 200, relayed: true,
			change: func(req *sip.Request, ours sip.Uri) {
				target := req.Recipient
				req.Recipient = ours
				req.RemoveHeader("Route")
				req.AppendHeader(&sip.RouteHeader{Address: target})
			}},
		{name: "a re-INVITE", method: sip.INVITE, code: 200, relayed: true},
		{name: "our host in the Route, a forged signature", method: sip.INFO, code: 404, reason: "Not Found: no dialog",
			change: func(req *sip.Request, _ sip.Uri) {
				req.GetHeader("Route").(*sip.RouteHeader).Address.UriParams.Add(pipeline.DialogParam, "forged")
			}},
		{name: "no Route", method: sip.INFO, code: 404, reason: "Not Found: no dialog",
			change: func(req *sip.Request, _ sip.Uri) { req.RemoveHeader("Route") }},
		{name: "a forged To tag", method: sip.INFO, code: 481,
			change: func(req *sip.Request, _ sip.Uri) { req.To().Params.Add("tag", "forged") }},
		{name: "a forged From tag: the signature no longer checks out", method: sip.INFO, code: 404, reason: "Not Found: no dialog",
			change: func(req *sip.Request, _ sip.Uri) { req.From().Params.Add("tag", "forged") }},
		{name: "a Request-URI that is neither end", method: sip.INFO, code: 403, reason: "Forbidden: not addressed to an end",
			change: func(req *sip.Request, _ sip.Uri) {
				req.Recipient = sip.Uri{Scheme: "sip", User: "mallory", Host: "127.0.0.1", Port: 9}
			}},
		{name: "a Route past ours to elsewhere", method: sip.INFO, code: 403, reason: "Forbidden: Route does not lead",
			change: func(req *sip.Request, _ sip.Uri) {
				req.AppendHeader(&sip.RouteHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 9, UriParams: sip.HeaderParams{{K: "lr"}}}})
			}},
		{name: "BYE", method: sip.BYE, code: 200, relayed: true},
		{name: "after the BYE", method: sip.INFO, bye: true, code: 481},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller := newPhone(t, "alice", answering(nil))
			callee := newPhone(t, "bob", answering(nil, 200))
			user, id := fmt.Sprintf("bob%d", i), fmt.Sprintf("in-dialog-%d", i)
			c.register(callee, user)
			ok, branch := c.call(t, caller, callee, user, id)
			ours := ok.GetHeader("Record-Route").(*sip.RecordRouteHeader).Address
			if tc.bye {
				bye := caller.inDialog(sip.BYE, ok, 2)
				caller.send(c.addr, bye)
				caller.waitResponse(bye, 200)
			}
			seq := 10
			sender, receiver := caller, callee
			req := caller.inDialog(tc.method, ok, seq)
			if tc.fromCallee {
				sender, receiver = callee, caller
				req = callee.calleeRequest(tc.method, branch, seq)
			}
			if tc.change != nil {
				tc.change(req, ours)
			}
			want := req.Recipient.String()
			if strings.Contains(want, c.addr) {
				want = callee.contact() // strict routing: the last Route
			}
			sender.send(c.addr, req)
			res := sender.waitResponse(req, 200)
			if res.StatusCode != tc.code || !strings.HasPrefix(res.Reason, tc.reason) {
				t.Errorf("%s answered %d %q, want %d %q...", tc.method, res.StatusCode, res.Reason, tc.code, tc.reason)
			}
			if tc.method == sip.INVITE && res.IsSuccess() {
				sender.send(c.addr, sender.inDialog(sip.ACK, ok, seq))
				receiver.wait("the ACK of the re-INVITE", 1, func(m sip.Message) bool {
					r, ok := m.(*sip.Request)
					return ok && r.IsAck() && r.CSeq().SeqNo == uint32(seq)
				})
			}
			c.idle(t)
			receiver.sync()
			got := receiver.find(func(m sip.Message) bool {
				r, ok := m.(*sip.Request)
				return ok && r.Method == tc.method && r.CSeq().SeqNo == uint32(seq)
			})
			if (len(got) > 0) != tc.relayed {
				t.Fatalf("%s relayed: %v, want %v", tc.method, len(got) > 0, tc.relayed)
			}
			if !tc.relayed {
				return
			}
			r := got[0].msg.(*sip.Request)
			if r.Recipient.String() != want {
				t.Errorf("relayed to %s, want %s", r.Recipient.String(), want)
			}
			if routes := r.GetHeaders("Route"); len(routes) > 0 {
				t.Errorf("relayed with Route %v: ours was not taken off", routes)
			}
			if n := len(r.GetHeaders("Via")); n != 2 {
				t.Errorf("relayed with %d Vias, want 2", n)
			}
			if r.GetHeader("Record-Route") != nil {
				t.Errorf("an in-dialog request record-routed: %s", r.GetHeader("Record-Route").Value())
			}
		})
	}
}

// TestCoreInitialRoute sends initial INVITEs with a Route set (RFC 3261
// 16.4): the proxy takes its own Route off, takes the Request-URI back
// from a strict router, and refuses a Route to another host.
func TestCoreInitialRoute(t *testing.T) {
	c := newCore(t, productChain)
	callee := newPhone(t, "bob", answering(nil, 486))
	c.register(callee, "carol")
	lr := sip.HeaderParams{{K: "lr"}}
	ours := sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: c.e.sockets[0].local.Port, UriParams: lr}
	tests := []struct {
		name    string
		change  func(req *sip.Request)
		code    int
		relayed bool
	}{
		{"our Route on top (an outbound proxy)", func(req *sip.Request) {
			req.AppendHeader(&sip.RouteHeader{Address: ours})
		}, 486, true},
		{"a strict router upstream: the Request-URI is ours, the target in the last Route", func(req *sip.Request) {
			target := req.Recipient
			req.Recipient = ours
			req.AppendHeader(&sip.RouteHeader{Address: target})
		}, 486, true},
		{"a Route to another host", func(req *sip.Request) {
			req.AppendHeader(&sip.RouteHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 9, UriParams: lr}})
		}, 403, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("route-%d", i)
			caller := newPhone(t, "alice", nil)
			inv := caller.build(sip.INVITE, "sip:carol@example.org", "sip:carol@example.org", id, 1)
			tc.change(inv)
			caller.send(c.addr, inv)
			final := caller.waitResponse(inv, 200)
			if final.StatusCode != tc.code {
				t.Errorf("INVITE answered %d %s, want %d", final.StatusCode, final.Reason, tc.code)
			}
			caller.send(c.addr, ackOf(inv, final))
			c.idle(t)
			callee.sync()
			got := callee.find(requestsOf(sip.INVITE, id))
			if (len(got) > 0) != tc.relayed {
				t.Fatalf("relayed: %v, want %v", len(got) > 0, tc.relayed)
			}
			if tc.relayed {
				r := got[0].msg.(*sip.Request)
				if r.Recipient.String() != callee.contact() {
					t.Errorf("relayed to %s, want %s", r.Recipient.String(), callee.contact())
				}
				if routes := r.GetHeaders("Route"); len(routes) > 0 {
					t.Errorf("relayed with Route %v", routes)
				}
			}
		})
	}
}

// TestCoreNotifyBeforeAnswer has the callee of a SUBSCRIBE send its NOTIFY
// before its 2xx (RFC 6665 4.1.2.4): the proxy relays it to the
// subscriber, and only to the subscriber.
func TestCoreNotifyBeforeAnswer(t *testing.T) {
	c := newCore(t, productChain)
	tests := []struct {
		name   string
		change func(req *sip.Request)
		code   int
	}{
		{"to the subscriber", nil, 200},
		{"to another target", func(req *sip.Request) { req.Recipient.User = "mallory" }, 481},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, id := fmt.Sprintf("notifier%d", i), fmt.Sprintf("notify-%d", i)
			subscriber := newPhone(t, "alice", answering(nil))
			notifier := newPhone(t, "bob", nil)
			c.register(notifier, user)
			sub := subscriber.build(sip.SUBSCRIBE, "sip:"+user+"@example.org", "sip:"+user+"@example.org", id, 1, "Event: presence", "Expires: 60")
			subscriber.send(c.addr, sub)
			got, from := notifier.waitRequest(sip.SUBSCRIBE, id, 1)
			notify := notifier.calleeRequest(sip.NOTIFY, got, 1)
			notify.AppendHeader(sip.NewHeader("Event", "presence"))
			notify.AppendHeader(sip.NewHeader("Subscription-State", "active;expires=60"))
			if tc.change != nil {
				tc.change(notify)
			}
			notifier.send(c.addr, notify)
			if res := notifier.waitResponse(notify, 200); res.StatusCode != tc.code {
				t.Errorf("NOTIFY answered %d %s, want %d", res.StatusCode, res.Reason, tc.code)
			}
			notifier.reply(got, from, 200)
			if res := subscriber.waitResponse(sub, 200); res.StatusCode != 200 {
				t.Errorf("SUBSCRIBE answered %d, want 200", res.StatusCode)
			}
			c.idle(t)
			subscriber.sync()
			if n := len(subscriber.find(requestsOf(sip.NOTIFY, id))); (n > 0) != (tc.code == 200) {
				t.Errorf("the subscriber got %d NOTIFYs", n)
			}
		})
	}
}
