package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestCoreFork forks an INVITE to the callees registered for bob, each
// answering by its codes, and checks the response context of RFC 3261
// 16.7: what the caller gets, and which branches are cancelled, and how.
func TestCoreFork(t *testing.T) {
	tests := []struct {
		name    string
		callees [][]int // what each callee answers its INVITE
		// finals are the caller's final responses, in any order (a
		// retransmission counted once); reason is the first one's phrase
		// when set.
		finals []int
		reason string
		// cancelled says which callees get a CANCEL; cancelReason is its
		// Reason header ("" for none).
		cancelled    []bool
		cancelReason string
		// headers are header lines of the caller's first final response.
		headers []string
	}{
		{name: "the first 2xx wins, the other branch is cancelled", callees: [][]int{{180}, {180, 200}},
			finals: []int{200}, cancelled: []bool{true, false}, cancelReason: cancelledElsewhere},
		{name: "every 2xx is relayed", callees: [][]int{{200}, {200}},
			finals: []int{200, 200}, cancelled: []bool{false, false}},
		{name: "a 6xx ends the fork and cancels the other branch", callees: [][]int{{180}, {603}},
			finals: []int{603}, cancelled: []bool{true, false}},
		{name: "a 6xx beats a lower class", callees: [][]int{{302}, {600}},
			finals: []int{600}, cancelled: []bool{false, false}},
		{name: "a 503 goes upstream as 500", callees: [][]int{{503}},
			finals: []int{500}, reason: "Server Internal Error", cancelled: []bool{false}},
		{name: "503 and 500: 500", callees: [][]int{{503}, {500}},
			finals: []int{500}, cancelled: []bool{false, false}},
		{name: "the lowest class wins", callees: [][]int{{486}, {302}},
			finals: []int{302}, cancelled: []bool{false, false}},
		{name: "a 4xx the caller can act on wins", callees: [][]int{{486}, {484}, {404}},
			finals: []int{484}, cancelled: []bool{false, false, false}},
		{name: "401 and 407 challenges are merged", callees: [][]int{{401}, {407}},
			cancelled: []bool{false, false},
			headers:   []string{`WWW-Authenticate: Digest realm="c1", nonce="1"`, `Proxy-Authenticate: Digest realm="c2", nonce="1"`}},
		{name: "two 401 challenges are merged", callees: [][]int{{401}, {180, 401}},
			finals: []int{401}, cancelled: []bool{false, false},
			headers: []string{`WWW-Authenticate: Digest realm="c1", nonce="1"`, `WWW-Authenticate: Digest realm="c2", nonce="1"`}},
	}
	c := newCore(t, productChain)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("bob%d", i)
			g := newGate(len(tc.callees))
			var callees []*phone
			for j, codes := range tc.callees {
				ph := newPhone(t, fmt.Sprintf("c%d", j+1), g.counted(answering(g.open, codes...)))
				c.register(ph, user)
				callees = append(callees, ph)
			}
			caller := newPhone(t, "alice", nil)
			id := fmt.Sprintf("fork-%d", i)
			inv := caller.call(c, user, id)

			final := caller.waitResponse(inv, 200)
			if n := len(tc.finals); n > 1 {
				caller.wait(fmt.Sprintf("final response #%d", n), n, responsesTo(inv, 200))
			}
			for j, ph := range callees {
				branch, _ := ph.waitRequest(sip.INVITE, id, 1)
				checkBranch(t, ph, branch, caller)
				if tc.cancelled[j] {
					cancel, _ := ph.waitRequest(sip.CANCEL, id, 1)
					checkCancel(t, ph, cancel, branch, tc.cancelReason)
				}
			}
			if !final.IsSuccess() {
				caller.send(c.addr, ackOf(inv, final))
			}
			// Every final a callee sent has reached the proxy once its
			// client transaction ACKed it (or, for a 2xx, once the
			// caller had it): what the proxy sends upstream for them
			// is on its way.
			for _, ph := range callees {
				if got := ph.find(requestsOf(sip.CANCEL, id)); len(got) > 0 || !slices.ContainsFunc(tc.finals, func(code int) bool { return code < 300 }) {
					ph.waitRequest(sip.ACK, id, 1)
				}
			}
			c.idle(t)
			caller.sync()
			for _, ph := range callees {
				ph.sync()
			}

			var got []int
			for _, code := range caller.codes(inv) {
				if code >= 200 {
					got = append(got, code)
				}
			}
			if tc.finals == nil {
				if len(got) != 1 || (got[0] != 401 && got[0] != 407) {
					t.Errorf("caller's finals %v, want one 401 or 407", got)
				}
			} else if !sameCodes(got, tc.finals) {
				t.Errorf("caller's finals %v, want %v; it read:\n%s", got, tc.finals, caller.dump())
			}
			if tc.reason != "" && final.Reason != tc.reason {
				t.Errorf("final response %d %q, want reason %q", final.StatusCode, final.Reason, tc.reason)
			}
			for _, h := range tc.headers {
				if !hasHeader(final, h) {
					t.Errorf("final response has no %q:\n%s", h, final)
				}
			}
			if len(tc.finals) == 2 && pipeline.ToTag(caller.wait("2xx", 2, responsesTo(inv, 200)).msg.(*sip.Response)) == pipeline.ToTag(final) {
				t.Errorf("the two 2xx have the same To tag %q: one was relayed twice", pipeline.ToTag(final))
			}
			for j, ph := range callees {
				if got := len(ph.find(requestsOf(sip.CANCEL, id))); (got > 0) != tc.cancelled[j] {
					t.Errorf("%s got %d CANCELs, want cancelled %v", ph.name, got, tc.cancelled[j])
				}
			}
		})
	}
}

// checkBranch checks what a callee received on its branch: the Request-URI
// is its Contact, the proxy's Via is on top of the caller's with a fresh
// branch and the loop hash, Max-Forwards is one less, and the proxy's
// Record-Route is on top.
func checkBranch(t *testing.T, ph *phone, branch *sip.Request, caller *phone) {
	t.Helper()
	if got := branch.Recipient.String(); got != ph.contact() {
		t.Errorf("%s: Request-URI %s, want its Contact %s", ph.name, got, ph.contact())
	}
	vias := branch.GetHeaders("Via")
	if len(vias) != 2 {
		t.Fatalf("%s: %d Vias, want the proxy's and the caller's:\n%s", ph.name, len(vias), branch)
	}
	top := vias[0].(*sip.ViaHeader)
	id, _ := top.Params.Get("branch")
	if !strings.HasPrefix(id, sip.RFC3261BranchMagicCookie) || !top.Params.Has(pipeline.LoopParam) {
		t.Errorf("%s: top Via %s has no RFC 3261 branch or no %s", ph.name, top.Value(), pipeline.LoopParam)
	}
	if v := vias[1].(*sip.ViaHeader); v.SentBy() != caller.addr() {
		t.Errorf("%s: second Via %s, want the caller's %s", ph.name, v.Value(), caller.addr())
	}
	if mf := branch.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("%s: Max-Forwards %v, want 69", ph.name, mf)
	}
	if rr := branch.GetHeader("Record-Route"); rr == nil || !strings.Contains(rr.Value(), ";lr") || !strings.Contains(rr.Value(), pipeline.DialogParam+"=") {
		t.Errorf("%s: Record-Route %v, want the proxy's, signed", ph.name, rr)
	}
}

// checkCancel checks a CANCEL a callee received against the INVITE of its
// branch (RFC 3261 9.1): same Request-URI, top Via, Call-ID, tags and CSeq
// number, and the Reason given ("" for none).
func checkCancel(t *testing.T, ph *phone, cancel, branch *sip.Request, reason string) {
	t.Helper()
	if cancel.Recipient.String() != branch.Recipient.String() {
		t.Errorf("%s: CANCEL to %s, INVITE to %s", ph.name, cancel.Recipient.String(), branch.Recipient.String())
	}
	if cancel.Via().Value() != branch.Via().Value() {
		t.Errorf("%s: CANCEL's Via %s, INVITE's %s", ph.name, cancel.Via().Value(), branch.Via().Value())
	}
	if cancel.CSeq().SeqNo != branch.CSeq().SeqNo || cancel.CSeq().MethodName != sip.CANCEL {
		t.Errorf("%s: CANCEL's CSeq %s, INVITE's %s", ph.name, cancel.CSeq().Value(), branch.CSeq().Value())
	}
	if pipeline.FromTag(cancel) != pipeline.FromTag(branch) || pipeline.ToTag(cancel) != "" {
		t.Errorf("%s: CANCEL's From/To %s/%s", ph.name, cancel.From().Value(), cancel.To().Value())
	}
	got := ""
	if h := cancel.GetHeader("Reason"); h != nil {
		got = h.Value()
	}
	if got != reason {
		t.Errorf("%s: CANCEL's Reason %q, want %q", ph.name, got, reason)
	}
}

func hasHeader(m sip.Message, line string) bool {
	name, value, _ := strings.Cut(line, ": ")
	for _, h := range m.GetHeaders(name) {
		if h.Value() == value {
			return true
		}
	}
	return false
}

// sameCodes reports whether a and b hold the same codes, in any order.
func sameCodes(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestCoreForkNonInvite forks a MESSAGE to two callees that both accept
// it: the caller gets the first 200 alone (RFC 3261 16.7 step 5: after a
// final response only an INVITE's 2xx still goes up), and each callee got
// the MESSAGE once.
func TestCoreForkNonInvite(t *testing.T) {
	c := newCore(t, productChain)
	const id = "fork-message"
	var callees []*phone
	for j := range 2 {
		ph := newPhone(t, fmt.Sprintf("m%d", j+1), answering(nil))
		c.register(ph, "bobm")
		callees = append(callees, ph)
	}
	caller := newPhone(t, "alice", nil)
	msg := caller.build(sip.MESSAGE, "sip:bobm@example.org", "sip:bobm@example.org", id, 1)
	caller.send(c.addr, msg)
	caller.waitResponse(msg, 200)
	for _, ph := range callees {
		ph.waitRequest(sip.MESSAGE, id, 1)
	}
	c.ended(t) // both branches' 200s were handled: the first answer settled the transaction
	caller.sync()
	var finals []int
	for _, code := range caller.codes(msg) {
		if code >= 200 {
			finals = append(finals, code)
		}
	}
	if !sameCodes(finals, []int{200}) {
		t.Errorf("the caller's finals %v, want one 200; it read:\n%s", finals, caller.dump())
	}
	for _, ph := range callees {
		ph.sync()
		if n := len(ph.find(requestsOf(sip.MESSAGE, id))); n != 1 {
			t.Errorf("callee %s got %d MESSAGEs, want 1", ph.name, n)
		}
	}
}
