package engine

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// hopsOf holds, by Request-URI user, the addresses coreHops sends a
// request to.
var hopsOf sync.Map

// coreHops sends a request that is not in a dialog, or an ACK, to the
// addresses hopsOf holds for its user, as if its host name resolved to
// them (a stage may set Target.Hops itself), with the forward stage's
// timers but without their floors.
type coreHops struct {
	FrTimeout       config.Duration `toml:"fr_timeout"`
	FailoverTimeout config.Duration `toml:"failover_timeout"`
}

func (f *coreHops) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	ctx.Forward = pipeline.ForwardOptions{ProvisionalTimeout: f.FrTimeout.D(), FailoverTimeout: f.FailoverTimeout.D()}
	if v, ok := hopsOf.Load(ctx.Request.Recipient.User); ok && (pipeline.ToTag(ctx.Request) == "" || ctx.Request.IsAck()) {
		var hops []resolve.Target
		for _, a := range v.([]string) {
			hops = append(hops, resolve.Target{Addr: netip.MustParseAddrPort(a), Transport: "UDP"})
		}
		ctx.Targets = []pipeline.Target{{URI: *ctx.Request.Recipient.Clone(), Hops: hops}}
	}
	return pipeline.Forwarded, nil
}

var registerHopsStage = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "core_hops", Description: "test", New: func() pipeline.Stage { return new(coreHops) }})
})

// lateChain record-routes and sends each request to its hops: a target
// at two addresses fails over after 200 ms, and a branch with no
// provisional response times out after 400 ms.
const lateChain = `
[[stage]]
use = "parse"
[[stage]]
use = "record_route"
[[stage]]
use = "core_hops"
fr_timeout = "400ms"
failover_timeout = "200ms"
`

// TestCoreLateAnswers has a callee answer late on a branch the proxy gave
// up on, after failing over to a second address or after fr_timeout: a
// provisional response gets a CANCEL, a 2xx an ACK and a BYE from the
// proxy, and nothing of it reaches the caller, who gets the second
// address's answer (or the 408) alone.
func TestCoreLateAnswers(t *testing.T) {
	registerHopsStage()
	c := newCoreWith(t, lateChain, Options{Linger: 50 * time.Millisecond})
	m := c.e.svc.Metrics
	tests := []struct {
		name     string
		method   sip.RequestMethod
		failover bool   // two addresses; else the late one alone
		late     []int  // what the first address answers, late
		final    int    // the caller's final response
		action   string // what the proxy counts
	}{
		{"failover, then 180", sip.INVITE, true, []int{180}, 200, metrics.LateCancelled},
		{"failover, then 200", sip.INVITE, true, []int{200}, 200, metrics.LateHungUp},
		{"failover, then 200 twice", sip.INVITE, true, []int{200, 200}, 200, metrics.LateHungUp},
		{"failover, then 486", sip.INVITE, true, []int{486}, 200, metrics.LateAbsorbed},
		{"fr_timeout, then 180", sip.INVITE, false, []int{180}, 408, metrics.LateCancelled},
		{"fr_timeout, then 200", sip.INVITE, false, []int{200}, 408, metrics.LateHungUp},
		{"MESSAGE failover, then 200", sip.MESSAGE, true, []int{200}, 200, metrics.LateAbsorbed},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("late-%d", i)
			user := fmt.Sprintf("gw%d", i)
			first := newPhone(t, "first", lateCallee) // answers only when told
			second := newPhone(t, "second", answering(nil, 180, 200))
			hops := []string{first.addr()}
			if tc.failover {
				hops = append(hops, second.addr())
			}
			hopsOf.Store(user, hops)
			caller := newPhone(t, "caller", nil)
			req := caller.build(tc.method, "sip:"+user+"@example.org", "sip:"+user+"@example.org", id, 1)
			caller.send(c.addr, req)
			branch, from := first.waitRequest(tc.method, id, 1)
			res := caller.waitResponse(req, 200)
			if res.StatusCode != tc.final {
				t.Fatalf("the caller's answer %d, want %d", res.StatusCode, tc.final)
			}
			switch {
			case tc.method == sip.INVITE && tc.final == 200:
				// The ACK goes to the address that answered.
				caller.send(c.addr, caller.inDialog(sip.ACK, res, 1))
				second.waitRequest(sip.ACK, id, 1)
			case tc.method == sip.INVITE:
				caller.send(c.addr, ackOf(req, res))
			}

			counted := lateAnswers(t, m, tc.action)
			for _, code := range tc.late {
				first.reply(branch, from, code)
			}
			late := tc.late[0]
			switch {
			case tc.method != sip.INVITE:
			case late < 200:
				cancel, _ := first.waitRequest(sip.CANCEL, id, 1)
				checkCancel(t, first, cancel, branch, "")
				checkAckNon2xx(t, first.wait("ACK of its 487", 1, ackWithTag(id, 1, first.tag())), branch)
			case late < 300:
				for n := range tc.late {
					ack := first.wait("ACK of its 200", n+1, ackWithTag(id, 1, first.tag()))
					checkLateRequest(t, first, ack, branch, c.addr)
				}
				r := first.wait("BYE", 1, requestsOf(sip.BYE, id))
				checkLateRequest(t, first, r, branch, c.addr)
				bye := r.msg.(*sip.Request)
				if bye.CSeq().SeqNo != branch.CSeq().SeqNo+1 || bye.GetHeader("Reason") == nil {
					t.Errorf("BYE's CSeq %s, Reason %v: want %d, a Reason", bye.CSeq().Value(), bye.GetHeader("Reason"), branch.CSeq().SeqNo+1)
				}
			default:
				checkAckNon2xx(t, first.wait("ACK of its final", 1, ackWithTag(id, 1, first.tag())), branch)
			}
			// The late answer was handled.
			poll(t, "the late answer counted", func() bool { return lateAnswers(t, m, tc.action) == counted+1 })
			if tc.failover && tc.method == sip.INVITE && late >= 200 && late < 300 {
				c.ended(t)
				// After every transaction ended: the 2xx, retransmitted,
				// is ACKed again, and still kept from the caller.
				first.reply(branch, from, late)
				first.wait("ACK of its 200 once its transaction ended", len(tc.late)+1, ackWithTag(id, 1, first.tag()))
			}
			caller.sync()
			first.sync()
			second.sync()
			for _, r := range caller.find(responsesTo(req, 0)) {
				if tag := pipeline.ToTag(r.msg.(*sip.Response)); tag == first.tag() {
					t.Errorf("the caller got the abandoned address's %s", summary(r.msg))
				}
			}
			if got := len(first.find(requestsOf(sip.BYE, id))); tc.method == sip.INVITE && late >= 200 && late < 300 && got != 1 {
				t.Errorf("the first address got %d BYEs, want 1", got)
			}
			if got := len(second.find(ackWithTag(id, 1, first.tag()))); got > 0 {
				t.Errorf("the second address got the ACK meant for the first")
			}
			if tc.failover && tc.method == sip.INVITE {
				if got := len(first.find(ackWithTag(id, 1, second.tag()))); got > 0 {
					t.Errorf("the first address got the caller's ACK of the second's 200")
				}
			}
		})
	}
}

// lateCallee answers an INVITE or a MESSAGE only when the test tells it,
// and other requests as answering does.
func lateCallee(ph *phone, req *sip.Request, from *net.UDPAddr) {
	if req.Method != sip.MESSAGE {
		answering(nil)(ph, req, from)
	}
}

// ackWithTag matches the ACKs of a call with the CSeq number seq and the
// To tag tag.
func ackWithTag(id string, seq uint32, tag string) func(sip.Message) bool {
	return func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.IsAck() && callID(req) == id && req.CSeq().SeqNo == seq && pipeline.ToTag(req) == tag
	}
}

// checkLateRequest checks the proxy's own ACK or BYE of a late 2xx: sent
// from the proxy to the phone's Contact, in the dialog of the INVITE branch.
func checkLateRequest(t *testing.T, ph *phone, r received, branch *sip.Request, proxy string) {
	t.Helper()
	req := r.msg.(*sip.Request)
	if r.from.String() != proxy {
		t.Errorf("%s: %s from %s, want the proxy's %s", ph.name, req.Method, r.from, proxy)
	}
	if req.Recipient.String() != ph.contact() {
		t.Errorf("%s: %s to %s, want its Contact %s", ph.name, req.Method, req.Recipient.String(), ph.contact())
	}
	if pipeline.FromTag(req) != pipeline.FromTag(branch) || pipeline.ToTag(req) != ph.tag() {
		t.Errorf("%s: %s From/To %s/%s", ph.name, req.Method, req.From().Value(), req.To().Value())
	}
	if len(req.GetHeaders("Route")) != 0 {
		t.Errorf("%s: %s has a Route set, want none (only the proxy record-routed)", ph.name, req.Method)
	}
	if via := req.Via(); via == nil || sameBranch(via, branch.Via()) {
		t.Errorf("%s: %s's Via %v, want a branch of its own", ph.name, req.Method, via)
	}
}

// checkAckNon2xx checks the ACK of a non-2xx final response to the
// INVITE branch: the same Via, Request-URI and CSeq number (RFC 3261
// 17.1.1.3).
func checkAckNon2xx(t *testing.T, r received, branch *sip.Request) {
	t.Helper()
	ack := r.msg.(*sip.Request)
	if ack.Via().Value() != branch.Via().Value() || ack.Recipient.String() != branch.Recipient.String() || ack.CSeq().SeqNo != branch.CSeq().SeqNo {
		t.Errorf("ACK %s, Via %s, CSeq %s; the INVITE's %s, %s, %s", ack.Recipient.String(), ack.Via().Value(), ack.CSeq().Value(),
			branch.Recipient.String(), branch.Via().Value(), branch.CSeq().Value())
	}
}

func sameBranch(a, b *sip.ViaHeader) bool {
	x, _ := a.Params.Get("branch")
	y, _ := b.Params.Get("branch")
	return x == y
}

// lateAnswers reads switchboard_late_answers_total{action}.
func lateAnswers(t *testing.T, m *metrics.Metrics, action string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "switchboard_late_answers_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "action" && l.GetValue() == action {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no switchboard_late_answers_total{action=%q}", action)
	return 0
}

// TestCoreAckToAnswered sends the ACK of a 2xx by the same host name as
// its INVITE, through a proxy that keeps no dialog (no record_route): it
// goes to the address that answered, not to the name's first address.
func TestCoreAckToAnswered(t *testing.T) {
	registerHopsStage()
	c := newCoreWith(t, `
[[stage]]
use = "parse"
[[stage]]
use = "core_hops"
failover_timeout = "200ms"
`, Options{Linger: 50 * time.Millisecond})
	tests := []struct {
		name        string
		firstSilent bool
	}{
		{"the first address answers", false},
		{"the second answers after failover", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, user := fmt.Sprintf("ack-answered-%d", i), fmt.Sprintf("gwack%d", i)
			firstScript := answering(nil, 200)
			if tc.firstSilent {
				firstScript = lateCallee
			}
			first := newPhone(t, "first", firstScript)
			second := newPhone(t, "second", answering(nil, 200))
			hopsOf.Store(user, []string{first.addr(), second.addr()})
			answerer, other := first, second
			if tc.firstSilent {
				answerer, other = second, first
			}
			caller := newPhone(t, "caller", nil)
			uri := "sip:" + user + "@example.org"
			inv := caller.build(sip.INVITE, uri, uri, id, 1)
			caller.send(c.addr, inv)
			ok := caller.waitResponse(inv, 200)
			if ok.StatusCode != 200 || pipeline.ToTag(ok) != answerer.tag() {
				t.Fatalf("the caller's answer %d from %q, want 200 from %s", ok.StatusCode, pipeline.ToTag(ok), answerer.name)
			}
			ack := caller.build(sip.ACK, uri, uri, id, 1)
			ack.To().Params.Add("tag", answerer.tag())
			caller.send(c.addr, ack)
			answerer.wait("the caller's ACK", 1, ackWithTag(id, 1, answerer.tag()))
			other.sync()
			if got := other.find(ackWithTag(id, 1, answerer.tag())); len(got) > 0 {
				t.Errorf("%s got the ACK of %s's 2xx", other.name, answerer.name)
			}
		})
	}
}
