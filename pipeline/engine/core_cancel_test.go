package engine

import (
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestCoreCancel sends a CANCEL at each point of an INVITE's life (RFC
// 3261 16.10) and checks what the caller and the callee get.
func TestCoreCancel(t *testing.T) {
	c := newCore(t, "[[stage]]\nuse = \"core_hold\"\n"+productChain)
	tests := []struct {
		name   string
		callee script
		// hold keeps the INVITE in the request stages until the caller's
		// CANCEL is answered.
		hold bool
		// ring: the callee rings only once the caller's CANCEL is
		// answered; else the caller waits for the callee's first answer
		// (waitFor) before it cancels.
		ring    bool
		waitFor int
		reason  string // the Reason of the caller's CANCEL
		// final is the caller's final response to the INVITE; forwarded
		// and cancelled say whether the callee gets the INVITE and a
		// CANCEL.
		final                int
		forwarded, cancelled bool
	}{
		{name: "before any response: sent at the callee's first 1xx", callee: answering(nil), ring: true,
			final: 487, forwarded: true, cancelled: true},
		{name: "after a 1xx, with its Reason", callee: answering(nil, 180), waitFor: 180, reason: `SIP;cause=200;text="Call completed elsewhere"`,
			final: 487, forwarded: true, cancelled: true},
		{name: "after the 200 reached the caller: not forwarded", callee: answering(nil, 180, 200), waitFor: 200,
			final: 200, forwarded: true},
		{name: "crossing the callee's 200", callee: answeringCancel(200, nil, 180), waitFor: 180,
			final: 200, forwarded: true, cancelled: true},
		{name: "while the request stages run: 487, nothing forwarded", callee: answering(nil, 180), hold: true,
			final: 487},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, id := fmt.Sprintf("cancel%d", i), fmt.Sprintf("cancel-%d", i)
			callee := newPhone(t, "callee", tc.callee)
			c.register(callee, user)
			caller := newPhone(t, "caller", nil)
			release := make(chan struct{})
			if tc.hold {
				held.Store(id, release)
				defer held.Delete(id)
			}
			inv := caller.call(c, user, id)
			caller.waitResponse(inv, 100)
			var branch *sip.Request
			if tc.forwarded {
				branch, _ = callee.waitRequest(sip.INVITE, id, 1)
			}
			if tc.waitFor > 0 {
				caller.waitResponse(inv, tc.waitFor)
			}

			cancel := cancelOf(inv)
			if tc.reason != "" {
				cancel.AppendHeader(sip.NewHeader("Reason", tc.reason))
			}
			caller.send(c.addr, cancel)
			if res := caller.waitResponse(cancel, 200); res.StatusCode != 200 {
				t.Errorf("CANCEL answered %d, want 200", res.StatusCode)
			}
			if tc.ring {
				// RFC 3261 9.1: no CANCEL before a provisional response.
				callee.sync()
				if got := callee.find(requestsOf(sip.CANCEL, id)); len(got) > 0 {
					t.Errorf("the callee got a CANCEL before it sent a provisional response")
				}
				callee.reply(branch, callee.find(requestsOf(sip.INVITE, id))[0].from, 180)
			}
			if tc.hold {
				close(release)
			}

			final := caller.waitResponse(inv, 200)
			if final.StatusCode != tc.final {
				t.Errorf("INVITE answered %d, want %d; the caller read:\n%s", final.StatusCode, tc.final, caller.dump())
			}
			if tc.cancelled {
				got, _ := callee.waitRequest(sip.CANCEL, id, 1)
				checkCancel(t, callee, got, branch, tc.reason)
			}
			if final.IsSuccess() {
				// The ACK of a 2xx is a request of its own, relayed.
				caller.send(c.addr, caller.inDialog(sip.ACK, final, 1))
				if ack, _ := callee.waitRequest(sip.ACK, id, 1); ack.Via().Value() == branch.Via().Value() {
					t.Errorf("the ACK of the 2xx has the INVITE's branch")
				}
			} else {
				caller.send(c.addr, ackOf(inv, final))
			}
			if tc.forwarded && !final.IsSuccess() {
				// The proxy ACKs the callee's 487 itself, with the
				// INVITE's branch (RFC 3261 17.1.1.3).
				if ack, _ := callee.waitRequest(sip.ACK, id, 1); ack.Via().Value() != branch.Via().Value() {
					t.Errorf("the ACK of the 487 has Via %s, the INVITE %s", ack.Via().Value(), branch.Via().Value())
				}
			}
			if tc.hold {
				// Until serve returns, the transaction holds a
				// reference of its own: then nothing more is sent.
				if v, ok := c.e.invites.Load(inviteKey(inv)); ok {
					tx := v.(*transaction)
					poll(t, "the request stages and forward done", func() bool { return tx.refs.Load() <= 1 })
				}
			}
			c.idle(t)
			caller.sync()
			callee.sync()
			if got := caller.codes(inv); final.IsSuccess() && slices.Contains(got, 487) {
				t.Errorf("the caller got a 487 after its 2xx: %v", got)
			}
			if got := len(callee.find(requestsOf(sip.INVITE, id))) > 0; got != tc.forwarded {
				t.Errorf("the callee got the INVITE: %v, want %v", got, tc.forwarded)
			}
			if got := len(callee.find(requestsOf(sip.CANCEL, id))) > 0; got != tc.cancelled {
				t.Errorf("the callee got a CANCEL: %v, want %v", got, tc.cancelled)
			}
		})
	}
}

// TestCoreCancelUnknown checks that a CANCEL that matches no INVITE gets
// 481 (RFC 3261 16.10), and goes nowhere.
func TestCoreCancelUnknown(t *testing.T) {
	c := newCore(t, productChain)
	tests := []struct {
		name  string
		known bool // the caller sent the proxy a request before
	}{
		{name: "from a source the proxy has heard from", known: true},
		{name: "from a new source"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller := newPhone(t, "caller", nil)
			if tc.known {
				opt := caller.build(sip.OPTIONS, c.uri(""), c.uri(""), fmt.Sprintf("hello-%d", i), 1)
				caller.send(c.addr, opt)
				caller.waitResponse(opt, 200)
			}
			inv := caller.build(sip.INVITE, "sip:nobody@example.org", "sip:nobody@example.org", fmt.Sprintf("cancel-unknown-%d", i), 1)
			cancel := cancelOf(inv)
			caller.send(c.addr, cancel)
			if res := caller.waitResponse(cancel, 200); res.StatusCode != 481 {
				t.Errorf("CANCEL answered %d, want 481", res.StatusCode)
			}
		})
	}
}

// TestCoreTimers lets branches run out of time: fr_timeout (no
// provisional response) and Timer C (no final response after one), and
// checks that a non-INVITE that timed out gets no 408 upstream (RFC 4320).
func TestCoreTimers(t *testing.T) {
	c := newCore(t, lookupChain+`
[[stage]]
use = "core_forward"
when = 'request.uri.user == "ringing"'
fr_timeout = "10s"
invite_timeout = "100ms"
[[stage]]
use = "core_forward"
fr_timeout = "100ms"
invite_timeout = "10s"
`)
	refuse408 := func(ph *phone, req *sip.Request, from *net.UDPAddr) { ph.reply(req, from, 408) }
	tests := []struct {
		name      string
		user      string
		method    sip.RequestMethod
		callee    script
		final     int // 0: none reaches the caller
		cancelled bool
	}{
		{"fr_timeout of an INVITE: 408, no CANCEL", "silent", sip.INVITE, answering(nil), 408, false},
		{"Timer C: the ringing branch is cancelled, 480", "ringing", sip.INVITE, answering(nil, 180), 480, true},
		{"fr_timeout of a MESSAGE: no 408 upstream", "mute", sip.MESSAGE, nil, 0, false},
		{"a MESSAGE answered 408: not relayed", "refusing", sip.MESSAGE, refuse408, 0, false},
		{"a MESSAGE answered in time", "quick", sip.MESSAGE, answering(nil), 200, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("timers-%d", i)
			callee := newPhone(t, "callee", tc.callee)
			c.register(callee, tc.user)
			caller := newPhone(t, "caller", nil)
			req := caller.build(tc.method, "sip:"+tc.user+"@example.org", "sip:"+tc.user+"@example.org", id, 1)
			caller.send(c.addr, req)
			branch, _ := callee.waitRequest(tc.method, id, 1)
			if tc.final != 0 {
				if res := caller.waitResponse(req, 200); res.StatusCode != tc.final {
					t.Errorf("%s answered %d %s, want %d", tc.method, res.StatusCode, res.Reason, tc.final)
				}
			}
			if tc.cancelled {
				got, _ := callee.waitRequest(sip.CANCEL, id, 1)
				checkCancel(t, callee, got, branch, "")
				// The callee's 487 reached the proxy when it is ACKed.
				callee.waitRequest(sip.ACK, id, 1)
			}
			c.idle(t)
			caller.sync()
			callee.sync()
			var finals []int
			for _, code := range caller.codes(req) {
				if code >= 200 {
					finals = append(finals, code)
				}
			}
			if want := []int{tc.final}; tc.final == 0 && len(finals) > 0 || tc.final != 0 && !sameCodes(finals, want) {
				t.Errorf("the caller's finals %v, want %d (0: none)", finals, tc.final)
			}
			if got := len(callee.find(requestsOf(sip.CANCEL, id))) > 0; got != tc.cancelled {
				t.Errorf("the callee got a CANCEL: %v, want %v", got, tc.cancelled)
			}
		})
	}
}
