package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	_ "github.com/switchboard-sip/switchboard/stages/dispatch"
)

// newDispatchCore runs a core whose chain sends every request to the set
// "gw" of gateways, in priority order (the first first), failing over on
// 503, 500 and after 300 ms without a response, with no health checks.
func newDispatchCore(t *testing.T, attempts int, gateways ...*phone) *core {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[[set]]\nname = \"gw\"\nalgorithm = \"priority\"\nattempts = %d\nfailover_timeout = \"300ms\"\nfailover_codes = [500]\n[set.check]\ninterval = \"0s\"\n", attempts)
	for i, gw := range gateways {
		fmt.Fprintf(&b, "[[set.destination]]\nuri = \"sip:%s\"\npriority = %d\n", gw.addr(), i)
	}
	return newCoreOn(t, b.String(), `
[[stage]]
use = "dispatch"
set = "gw"
[[stage]]
use = "forward"
fr_timeout = "1s"
`, Options{})
}

// replying answers every request but ACK and CANCEL with code.
func replying(code int) script {
	return func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		if !req.IsAck() && !req.IsCancel() {
			ph.reply(req, from, code)
		}
	}
}

// TestDispatchFailover sends a request to a set of two gateways whose
// first fails in one way or another: it reaches the second inside the
// same transaction when the failure is no response, a 503 or a code the
// set names, and never after a 2xx, a 6xx or another final.
func TestDispatchFailover(t *testing.T) {
	tests := []struct {
		name     string
		method   sip.RequestMethod
		first    script // nil answers nothing
		want     int    // the caller's final response
		failover bool   // the second gateway gets the request
	}{
		{"no response", sip.INVITE, nil, 200, true},
		{"503", sip.INVITE, answering(nil, 503), 200, true},
		{"a failover code", sip.INVITE, answering(nil, 100, 500), 200, true},
		{"MESSAGE, 503", sip.MESSAGE, replying(503), 200, true},
		{"MESSAGE, no response", sip.MESSAGE, nil, 200, true},
		{"486", sip.INVITE, answering(nil, 180, 486), 486, false},
		{"6xx", sip.INVITE, answering(nil, 180, 603), 603, false},
		{"2xx", sip.INVITE, answering(nil, 180, 200), 200, false},
	}
	caller := newPhone(t, "caller", nil)
	for i, tc := range tests {
		first := newPhone(t, "first", tc.first)
		second := newPhone(t, "second", answering(nil, 180, 200))
		c := newDispatchCore(t, 3, first, second)
		id := fmt.Sprintf("dispatch-failover-%d", i)
		req := caller.build(tc.method, "sip:0123@example.org", "sip:0123@example.org", id, 1)
		caller.send(c.addr, req)
		if res := caller.waitResponse(req, 200); res.StatusCode != tc.want {
			t.Errorf("test %d (%s): answer %d, want %d", i, tc.name, res.StatusCode, tc.want)
		}
		got, _ := first.waitRequest(tc.method, id, 1)
		if got.Recipient.User != "0123" || got.Recipient.Host != "127.0.0.1" {
			t.Errorf("test %d (%s): Request-URI %s, want the number at the gateway", i, tc.name, got.Recipient.String())
		}
		c.idle(t)
		if n := len(second.find(requestsOf(tc.method, id))); (n > 0) != tc.failover {
			t.Errorf("test %d (%s): the second gateway got %d requests, want failover %v", i, tc.name, n, tc.failover)
		}
	}
}

// TestDispatchNoFailoverAfterCancel cancels an INVITE whose first gateway
// is silent: when the failover time comes, the request goes nowhere else.
func TestDispatchNoFailoverAfterCancel(t *testing.T) {
	first := newPhone(t, "first", nil)
	second := newPhone(t, "second", answering(nil, 180, 200))
	c := newDispatchCore(t, 3, first, second)
	caller := newPhone(t, "caller", nil)
	inv := caller.build(sip.INVITE, "sip:0123@example.org", "sip:0123@example.org", "dispatch-cancel", 1)
	caller.send(c.addr, inv)
	first.waitRequest(sip.INVITE, "dispatch-cancel", 1)
	caller.send(c.addr, cancelOf(inv))
	if res := caller.waitResponse(inv, 200); res.StatusCode != 487 {
		t.Errorf("answer %d, want 487", res.StatusCode)
	}
	c.ended(t) // the first branch ends at fr_timeout, well after the failover time
	if n := len(second.find(requestsOf(sip.INVITE, "dispatch-cancel"))); n != 0 {
		t.Errorf("the second gateway got %d INVITEs after the caller's CANCEL", n)
	}
}

// TestDispatchAttempts sends to a set whose every gateway answers 503:
// only attempts of them get the request, and the caller gets 500 (RFC
// 3261 16.7: a 503 goes upstream as 500).
func TestDispatchAttempts(t *testing.T) {
	gws := []*phone{newPhone(t, "gw1", replying(503)), newPhone(t, "gw2", replying(503)), newPhone(t, "gw3", replying(503))}
	c := newDispatchCore(t, 2, gws...)
	caller := newPhone(t, "caller", nil)
	req := caller.build(sip.MESSAGE, "sip:0123@example.org", "sip:0123@example.org", "dispatch-attempts", 1)
	caller.send(c.addr, req)
	if res := caller.waitResponse(req, 200); res.StatusCode != 500 {
		t.Errorf("answer %d, want 500", res.StatusCode)
	}
	for i, gw := range gws {
		n := len(gw.find(requestsOf(sip.MESSAGE, "dispatch-attempts")))
		if want := map[bool]int{true: 1, false: 0}[i < 2]; n != want {
			t.Errorf("gateway %d got %d requests, want %d", i+1, n, want)
		}
	}
}

// TestDispatchRetryAfter has the only gateway answer 503 with
// Retry-After: the next request finds no live destination and gets 503
// with a Retry-After of about as long, from the proxy itself.
func TestDispatchRetryAfter(t *testing.T) {
	gw := newPhone(t, "gw", func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		res := sip.NewResponseFromRequest(req, 503, "Busy Here", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "120"))
		res.AppendHeader(&sip.ToHeader{Address: req.To().Address, Params: sip.NewParams()})
		ph.send(from.String(), res)
	})
	c := newDispatchCore(t, 3, gw)
	caller := newPhone(t, "caller", nil)
	first := caller.build(sip.MESSAGE, "sip:0123@example.org", "sip:0123@example.org", "retry-after-1", 1)
	caller.send(c.addr, first)
	if res := caller.waitResponse(first, 200); res.StatusCode != 500 {
		t.Errorf("first answer %d, want 500", res.StatusCode)
	}
	second := caller.build(sip.MESSAGE, "sip:0123@example.org", "sip:0123@example.org", "retry-after-2", 1)
	caller.send(c.addr, second)
	res := caller.waitResponse(second, 200)
	ra := res.GetHeader("Retry-After")
	if res.StatusCode != 503 || ra == nil || (ra.Value() != "120" && ra.Value() != "119") {
		t.Errorf("second answer %s, want 503 with Retry-After 120", summary(res))
	}
	if n := len(gw.find(requestsOf(sip.MESSAGE, "retry-after-2"))); n != 0 {
		t.Errorf("the gateway out for its Retry-After got %d requests", n)
	}
}

// TestDestinationsTrusted: the addresses of a set's destinations count as
// trusted sources (the reader's share, max_invites_per_source), others do
// not.
func TestDestinationsTrusted(t *testing.T) {
	gw := newPhone(t, "gateway", nil)
	c := newDispatchCore(t, 1, gw)
	if ip := netip.MustParseAddr("127.0.0.1"); !c.e.trustedSource(ip) {
		t.Errorf("the gateway's address %s is not trusted", ip)
	}
	if ip := netip.MustParseAddr("127.0.0.9"); c.e.trustedSource(ip) {
		t.Errorf("%s, no destination's, is trusted", ip)
	}
	if plain := newCore(t, "[[stage]]\nuse = \"forward\"\n"); plain.e.trustedSource(netip.MustParseAddr("127.0.0.1")) {
		t.Error("without sets, 127.0.0.1 is trusted")
	}
}
