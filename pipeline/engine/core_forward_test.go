package engine

import (
	"fmt"
	"net"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/location"
	_ "github.com/switchboard-sip/switchboard/stages/callforward"
)

// forwardChain is the product's chain with the callforward stage in place
// of location.
func forwardChain(keys string) string {
	return `
[[stage]]
use = "parse"
[[stage]]
use = "registrar"
[[stage]]
use = "callforward"
` + keys + `
[[stage]]
use = "record_route"
[[stage]]
use = "forward"
`
}

// redirecting answers an INVITE 302 to contact (and ACKs nothing).
func redirecting(contact string) script {
	return func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		if !req.IsInvite() {
			return
		}
		res := sip.NewResponseFromRequest(req, 302, "Moved Temporarily", nil)
		res.To().Params.Add("tag", ph.tag())
		res.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
		if _, err := ph.conn.WriteToUDP([]byte(res.String()), from); err != nil {
			ph.t.Error(err)
		}
	}
}

// TestCoreCallForward calls user a, whose devices answer by their codes
// and whose forwarding is set in the store, and checks what the caller
// gets and which phones rang (and were cancelled).
func TestCoreCallForward(t *testing.T) {
	type device struct {
		user  string
		q     string // the Contact's q ("" for none)
		codes []int
	}
	tests := []struct {
		name    string
		keys    string
		devices []device
		fwd     map[string]location.Forwarding
		// redirect makes device 0 answer 302 to device 1.
		redirect bool
		final    int
		// rang and cancelled are, for each device, whether it got the
		// INVITE and a CANCEL.
		rang, cancelled []bool
	}{
		{name: "busy", devices: []device{{"a", "", []int{486}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Busy: "b"}},
			final: 200, rang: []bool{true, true}, cancelled: []bool{false, false}},
		{name: "busy without forwarding", devices: []device{{"a", "", []int{486}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Unavailable: "b"}},
			final: 486, rang: []bool{true, false}, cancelled: []bool{false, false}},
		{name: "no answer", devices: []device{{"a", "", []int{180}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {NoAnswer: "b", NoAnswerAfter: 1}},
			final: 200, rang: []bool{true, true}, cancelled: []bool{true, false}},
		{name: "unavailable: every device 480", devices: []device{{"a", "", []int{480}}, {"a", "", []int{408}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Unavailable: "b"}},
			final: 200, rang: []bool{true, true, true}, cancelled: []bool{false, false, false}},
		{name: "unavailable: no binding", devices: []device{{"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Unavailable: "b"}},
			final: 200, rang: []bool{true}, cancelled: []bool{false}},
		{name: "unconditional", devices: []device{{"a", "", []int{200}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Unconditional: "b"}},
			final: 200, rang: []bool{false, true}, cancelled: []bool{false, false}},
		{name: "the target's own forwarding applies", devices: []device{{"a", "", []int{486}}, {"b", "", []int{486}}, {"c", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Busy: "b"}, "b": {Busy: "c"}},
			final: 200, rang: []bool{true, true, true}, cancelled: []bool{false, false, false}},
		{name: "a loop on busy stops", devices: []device{{"a", "", []int{486}}, {"b", "", []int{486}}},
			fwd:   map[string]location.Forwarding{"a": {Busy: "b"}, "b": {Busy: "a"}},
			final: 486, rang: []bool{true, true}, cancelled: []bool{false, false}},
		{name: "an unconditional loop is 482", devices: []device{{"a", "", []int{200}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Unconditional: "b"}, "b": {Unconditional: "a"}},
			final: 482, rang: []bool{false, false}, cancelled: []bool{false, false}},
		{name: "the chain limit stops", keys: "chain_limit = 1", devices: []device{{"a", "", []int{486}}, {"b", "", []int{486}}, {"c", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Busy: "b"}, "b": {Busy: "c"}},
			final: 486, rang: []bool{true, true, false}, cancelled: []bool{false, false, false}},
		{name: "a 6xx is not busy by default", devices: []device{{"a", "", []int{603}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Busy: "b"}},
			final: 603, rang: []bool{true, false}, cancelled: []bool{false, false}},
		{name: "busy_on_6xx", keys: "busy_on_6xx = true", devices: []device{{"a", "", []int{603}}, {"b", "", []int{200}}},
			fwd:   map[string]location.Forwarding{"a": {Busy: "b"}},
			final: 200, rang: []bool{true, true}, cancelled: []bool{false, false}},
		{name: "3xx relayed", devices: []device{{"a", "", nil}, {"x", "", []int{200}}}, redirect: true,
			final: 302, rang: []bool{true, false}, cancelled: []bool{false, false}},
		{name: "3xx followed", keys: "follow_redirects = 1", devices: []device{{"a", "", nil}, {"x", "", []int{200}}}, redirect: true,
			final: 200, rang: []bool{true, true}, cancelled: []bool{false, false}},
		{name: "q order: serial off rings all", devices: []device{{"a", "1.0", []int{480}}, {"a", "0.5", []int{180}}, {"a", "0.5", []int{200}}},
			final: 200, rang: []bool{true, true, true}, cancelled: []bool{false, true, false}},
		{name: "q order: serial", keys: "serial = true", devices: []device{{"a", "0.5", []int{180}}, {"a", "1.0", []int{480}}, {"a", "0.5", []int{180, 200}}},
			final: 200, rang: []bool{true, true, true}, cancelled: []bool{true, false, false}},
		{name: "q order: the first q answers", keys: "serial = true", devices: []device{{"a", "0.5", []int{200}}, {"a", "1.0", []int{200}}, {"a", "0.1", []int{200}}},
			final: 200, rang: []bool{false, true, false}, cancelled: []bool{false, false, false}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, forwardChain(tc.keys))
			// Made last first: the first may redirect to the second.
			phones := make([]*phone, len(tc.devices))
			for j := len(tc.devices) - 1; j >= 0; j-- {
				d := tc.devices[j]
				s := answering(nil, d.codes...)
				if j == 0 && tc.redirect {
					s = redirecting(phones[1].contact())
				}
				phones[j] = newPhone(t, fmt.Sprintf("%s%d", d.user, j), s)
			}
			for j, d := range tc.devices {
				if d.user == "x" {
					continue // reached by its URI only
				}
				contact := phones[j].contact()
				if d.q != "" {
					contact += ";q=" + d.q
				}
				c.bindQ(phones[j], d.user, contact)
			}
			fs := c.e.svc.Location.(location.Forwards)
			for aor, f := range tc.fwd {
				if err := fs.SetForwarding(aor, f); err != nil {
					t.Fatal(err)
				}
			}
			caller := newPhone(t, "caller", nil)
			id := fmt.Sprintf("fwd-%d", i)
			inv := caller.call(c, "a", id)
			final := caller.waitResponse(inv, 200)
			if final.StatusCode != tc.final {
				t.Errorf("caller got %d, want %d; it read:\n%s", final.StatusCode, tc.final, caller.dump())
			}
			if !final.IsSuccess() {
				caller.send(c.addr, ackOf(inv, final))
			}
			c.idle(t)
			for j, ph := range phones {
				if tc.cancelled[j] {
					ph.waitRequest(sip.CANCEL, id, 1)
				}
				ph.sync()
				if got := len(ph.find(requestsOf(sip.INVITE, id))) > 0; got != tc.rang[j] {
					t.Errorf("%s rang %v, want %v:\n%s", ph.name, got, tc.rang[j], ph.dump())
				}
				if got := len(ph.find(requestsOf(sip.CANCEL, id))) > 0; got != tc.cancelled[j] {
					t.Errorf("%s cancelled %v, want %v:\n%s", ph.name, got, tc.cancelled[j], ph.dump())
				}
			}
		})
	}
}

// bindQ registers contact, which may carry parameters such as q, for
// user@example.org.
func (c *core) bindQ(ph *phone, user, contact string) {
	ph.t.Helper()
	req := ph.build(sip.REGISTER, "sip:example.org", "sip:"+user+"@example.org", "reg-"+user+"-"+ph.name, 1, "Expires: 300")
	req.RemoveHeader("Contact")
	req.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	if i := len(contact); i > 0 {
		if u, params, ok := cutParams(contact); ok {
			req.RemoveHeader("Contact")
			req.AppendHeader(sip.NewHeader("Contact", "<"+u+">;"+params))
		}
	}
	ph.send(c.addr, req)
	if res := ph.waitResponse(req, 200); res.StatusCode != 200 {
		ph.t.Fatalf("REGISTER of %s for %s answered %d %s", contact, user, res.StatusCode, res.Reason)
	}
}

// cutParams splits "uri;q=0.5" into the URI and its header parameters.
func cutParams(contact string) (string, string, bool) {
	for i := len(contact) - 1; i >= 0; i-- {
		if contact[i] == ';' {
			return contact[:i], contact[i+1:], true
		}
	}
	return contact, "", false
}

// TestCoreCallForwardTargets forwards on busy with AORs keyed by user and
// domain, to a user and to a destination set: the target is found in the
// called domain, and the set gets the number dialled, after the first
// round's branch took the request.
func TestCoreCallForwardTargets(t *testing.T) {
	vm := newPhone(t, "vm", answering(nil, 200))
	sections := fmt.Sprintf("aor = \"user@domain\"\n[[set]]\nname = \"vm\"\n[set.check]\ninterval = \"0s\"\n[[set.destination]]\nuri = \"sip:%s\"\n", vm.addr())
	tests := []struct {
		name, to string
		target   *phone // the phone the forward reaches
	}{
		{name: "a user of the called domain", to: "b"},
		{name: "a destination set", to: "set:vm", target: vm},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCoreOn(t, sections, forwardChain(""), Options{})
			a := newPhone(t, "a", answering(nil, 486))
			c.register(a, "a")
			target := tc.target
			if target == nil {
				target = newPhone(t, "b", answering(nil, 200))
				c.register(target, "b")
			}
			fs := c.e.svc.Location.(location.Forwards)
			if err := fs.SetForwarding("a@example.org", location.Forwarding{Busy: tc.to}); err != nil {
				t.Fatal(err)
			}
			caller := newPhone(t, "caller", nil)
			id := fmt.Sprintf("fwd-target-%d", i)
			inv := caller.call(c, "a", id)
			if final := caller.waitResponse(inv, 200); final.StatusCode != 200 {
				t.Fatalf("caller got %d, want 200; it read:\n%s", final.StatusCode, caller.dump())
			}
			branch, _ := target.waitRequest(sip.INVITE, id, 1)
			if tc.target != nil && branch.Recipient.User != "a" {
				t.Errorf("the set's branch has Request-URI %s, want the user dialled, a", branch.Recipient.String())
			}
		})
	}
}
