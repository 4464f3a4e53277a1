package engine

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestMaxTransactionsCountsLingering fills max_transactions with
// transactions that were answered and linger: INVITEs answered with a
// final error, whose ACK never comes, wait for it (Timer H, seconds) with
// their messages, as those in flight hold them, so the next request gets
// 503. (A request answered 2xx lingers in sipgo only sipgoAbsorb: too
// short to count on here.)
func TestMaxTransactionsCountsLingering(t *testing.T) {
	const limit = 5
	e := forwardingEngine(t, fmt.Sprintf("max_transactions = %d", limit), "")
	caller := newPeer(t, "127.0.0.1", nil)
	proxy := e.testAddr("UDP")
	for i := range limit {
		req := caller.request(sip.INVITE, "sip:"+proxy, fmt.Sprintf("linger-%d", i), 1)
		caller.send(proxy, req)
		if res := caller.response(req, 200, 5*time.Second); res == nil || res.StatusCode < 300 {
			t.Fatalf("INVITE %d answered %v, want a final error", i, res)
		}
	}
	req := caller.request(sip.OPTIONS, "sip:"+proxy, "linger-over", 1)
	caller.send(proxy, req)
	res := caller.response(req, 200, 5*time.Second)
	if res == nil || res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("with %d transactions lingering, a new request was answered %v, want 503 with Retry-After", limit, res)
	}
	// The 503 does not linger (refuse). The last final may have reached
	// the caller before its transaction moved from in flight to
	// lingering: wait for that, not for more.
	deadline := time.Now().Add(5 * time.Second)
	for e.Lingering() != limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.Lingering(); got != limit {
		t.Errorf("Lingering() = %d, want %d", got, limit)
	}
}

// TestInviteLimits plays the attack on a phone that only rings, shrunk:
// a source, or callers to one user, keep INVITEs ringing. Past
// max_invites_per_source the source gets 503 with Retry-After, past
// max_invites_per_callee the caller gets 486; other sources and users are
// served, and a call that ends gives its place back.
func TestInviteLimits(t *testing.T) {
	shortT1(t, 20*time.Millisecond)
	e := forwardingEngine(t, "max_invites_per_source = 2\nmax_invites_per_callee = 2", `invite_timeout = "60s"`)
	proxy := e.testAddr("UDP")
	callee := newPeer(t, "127.0.0.1", ringing("200"))
	a := newPeer(t, "127.0.0.1", nil)
	b := newPeer(t, "127.0.0.2", nil)
	c := newPeer(t, "127.0.0.3", nil)
	type call struct {
		p   *peer
		inv *sip.Request
	}
	var ringingCalls []call
	steps := []struct {
		caller *peer
		user   string
		want   int
	}{
		{a, "bob", 180},
		{a, "carol", 180},
		{a, "dave", 503}, // a has 2 ringing
		{b, "dave", 180},
		{b, "bob", 180},
		{c, "bob", 486}, // bob has 2 ringing
		{c, "carol", 180},
	}
	for i, step := range steps {
		inv := step.caller.invite("sip:"+step.user+"@"+callee.addr(), fmt.Sprintf("limits-%d", i))
		step.caller.send(proxy, inv)
		res := step.caller.response(inv, 180, 5*time.Second)
		if res == nil || res.StatusCode != step.want {
			t.Fatalf("step %d: call from %s to %s answered %v, want %d", i, step.caller.addr(), step.user, res, step.want)
		}
		if res.StatusCode == 503 && res.GetHeader("Retry-After") == nil {
			t.Errorf("step %d: 503 without Retry-After", i)
		}
		if res.StatusCode == 180 {
			ringingCalls = append(ringingCalls, call{step.caller, inv})
		}
	}
	// a's call to bob ends: a and bob have room for one more each.
	hangUp := func(c call) {
		t.Helper()
		c.p.send(proxy, cancelOf(c.inv))
		if res := c.p.response(c.inv, 300, 5*time.Second); res == nil || res.StatusCode != 487 {
			t.Fatalf("the cancelled call was answered %v, want 487", res)
		}
	}
	hangUp(ringingCalls[0])
	ringingCalls = ringingCalls[1:]
	inv := a.invite("sip:bob@"+callee.addr(), "limits-after")
	a.send(proxy, inv)
	if res := a.response(inv, 180, 5*time.Second); res == nil || res.StatusCode != 180 {
		t.Fatalf("after a call ended, a call from its source to its callee was answered %v, want 180", res)
	}
	ringingCalls = append(ringingCalls, call{a, inv})
	for _, c := range ringingCalls {
		c.p.send(proxy, cancelOf(c.inv))
	}
	for _, c := range ringingCalls {
		if res := c.p.response(c.inv, 300, 5*time.Second); res == nil || res.StatusCode != 487 {
			t.Errorf("the cancelled call was answered %v, want 487", res)
		}
	}
}

func TestSourceKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.0.2.10", "192.0.2.10"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"::ffff:192.0.2.10", "::ffff:192.0.2.10"},
	}
	for i, tc := range tests {
		if got := sourceKey(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("test %d: sourceKey(%s) = %s, want %s", i, tc.ip, got, tc.want)
		}
	}
}

// TestRefusalsDoNotLinger floods past max_invites_per_source from an
// address that never ACKs: the refusals end their transactions at once
// instead of lingering Timer H (32 s) each, so that they cannot fill
// max_transactions themselves; the ACK of one is absorbed, not relayed.
func TestRefusalsDoNotLinger(t *testing.T) {
	shortT1(t, 20*time.Millisecond)
	e := forwardingEngine(t, "max_invites_per_source = 1", `invite_timeout = "60s"`)
	proxy := e.testAddr("UDP")
	acks := make(chan *sip.Request, 16)
	callee := newPeer(t, "127.0.0.1", func(p *peer, req *sip.Request, from *net.UDPAddr) {
		switch {
		case req.IsInvite():
			p.answer(req, from, 180, "Ringing")
		case req.IsAck():
			acks <- req
		case req.IsCancel():
			p.answer(req, from, 200, "OK")
		}
	})
	caller := newPeer(t, "127.0.0.1", nil)
	ringingCall := caller.invite("sip:bob@"+callee.addr(), "refusals-ringing")
	caller.send(proxy, ringingCall)
	if res := caller.response(ringingCall, 180, 5*time.Second); res == nil || res.StatusCode != 180 {
		t.Fatalf("the first call was answered %v, want 180", res)
	}
	const n = 50
	var last *sip.Response
	var lastInv *sip.Request
	for i := range n {
		inv := caller.invite("sip:bob@"+callee.addr(), fmt.Sprintf("refusals-%d", i))
		caller.send(proxy, inv)
		res := caller.response(inv, 200, 5*time.Second)
		if res == nil || res.StatusCode != 503 {
			t.Fatalf("call %d answered %v, want 503", i, res)
		}
		last, lastInv = res, inv
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.Lingering() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d refused transactions still linger after 5 s", e.Lingering())
		}
		time.Sleep(10 * time.Millisecond)
	}
	caller.send(proxy, ackOf(lastInv, last))
	select {
	case ack := <-acks:
		t.Errorf("the ACK of a refusal was relayed to the callee:\n%s", ack)
	case <-time.After(500 * time.Millisecond):
	}
	caller.send(proxy, cancelOf(ringingCall))
	if res := caller.response(ringingCall, 300, 5*time.Second); res == nil {
		t.Error("no final response to the cancelled call")
	}
}

// TestInviteLimitTrusted: a source of server.trusted_sources (a PBX, an
// SBC) is not held to max_invites_per_source.
func TestInviteLimitTrusted(t *testing.T) {
	shortT1(t, 20*time.Millisecond)
	e := forwardingEngine(t, "max_invites_per_source = 1\ntrusted_sources = [\"127.0.0.2\"]", `invite_timeout = "60s"`)
	proxy := e.testAddr("UDP")
	callee := newPeer(t, "127.0.0.1", ringing("200"))
	pbx := newPeer(t, "127.0.0.2", nil)
	for i, user := range []string{"bob", "carol", "dave"} {
		inv := pbx.invite("sip:"+user+"@"+callee.addr(), fmt.Sprintf("trusted-%d", i))
		pbx.send(proxy, inv)
		if res := pbx.response(inv, 180, 5*time.Second); res == nil || res.StatusCode != 180 {
			t.Fatalf("call %d from the trusted source answered %v, want 180", i, res)
		}
		t.Cleanup(func() {
			pbx.send(proxy, cancelOf(inv))
			pbx.response(inv, 300, 5*time.Second)
		})
	}
}

// TestRefusalRetransmitted: an INVITE refused past max_invites_per_callee
// and retransmitted after the callee's other call ended (a retransmission
// that crossed the 486, or waited behind it in the socket's buffer) gets
// the same 486 again, never a second final response from the callee for a
// call the caller gave up.
func TestRefusalRetransmitted(t *testing.T) {
	shortT1(t, 20*time.Millisecond)
	e := forwardingEngine(t, "max_invites_per_callee = 1", `invite_timeout = "60s"`)
	proxy := e.testAddr("UDP")
	var mu sync.Mutex
	reached := map[string]int{}
	ring := ringing("200")
	callee := newPeer(t, "127.0.0.1", func(p *peer, req *sip.Request, from *net.UDPAddr) {
		if req.IsInvite() {
			mu.Lock()
			reached[callID(req)]++
			mu.Unlock()
		}
		ring(p, req, from)
	})
	caller := newPeer(t, "127.0.0.1", nil)
	first := caller.invite("sip:bob@"+callee.addr(), "retrans-first")
	caller.send(proxy, first)
	if res := caller.response(first, 180, 5*time.Second); res == nil || res.StatusCode != 180 {
		t.Fatalf("the first call was answered %v, want 180", res)
	}
	second := caller.invite("sip:bob@"+callee.addr(), "retrans-second")
	caller.send(proxy, second)
	refusal := caller.response(second, 200, 5*time.Second)
	if refusal == nil || refusal.StatusCode != 486 {
		t.Fatalf("the second call was answered %v, want 486", refusal)
	}
	caller.send(proxy, cancelOf(first))
	if res := caller.response(first, 300, 5*time.Second); res == nil || res.StatusCode != 487 {
		t.Fatalf("the cancelled call was answered %v, want 487", res)
	}
	caller.send(proxy, second) // bob is free now
	again := caller.response(second, 100, 5*time.Second)
	if again == nil || again.StatusCode != 486 || pipeline.ToTag(again) != pipeline.ToTag(refusal) {
		t.Fatalf("the retransmitted INVITE was answered %v, want the 486 again (To tag %s)", again, pipeline.ToTag(refusal))
	}
	mu.Lock()
	defer mu.Unlock()
	if n := reached["retrans-second"]; n != 0 {
		t.Errorf("the refused INVITE reached the callee %d times", n)
	}
}
