package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestCore2xxRetransmission has the callee retransmit its 200 to an
// INVITE while the proxy's transactions last, and after they ended: both
// reach the caller (RFC 3261 16.7 step 5, 13.3.1.4), the second one
// statelessly, with the proxy's Via taken off.
func TestCore2xxRetransmission(t *testing.T) {
	// Transactions end 50 ms after their final response (the next
	// engine's New sets the linger back).
	c := newCoreWith(t, productChain, Options{Linger: 50 * time.Millisecond})
	tests := []struct {
		name  string
		ended bool // the callee retransmits once every transaction ended
	}{
		{"while the transactions last", false},
		{"after the transactions ended", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, id := fmt.Sprintf("bob%d", i), fmt.Sprintf("retransmit-%d", i)
			callee := newPhone(t, "bob", answering(nil, 200))
			c.register(callee, user)
			caller := newPhone(t, "alice", nil)
			inv := caller.call(c, user, id)
			ok := caller.waitResponse(inv, 200)
			branch, from := callee.waitRequest(sip.INVITE, id, 1)
			if tc.ended {
				c.ended(t)
			}
			callee.reply(branch, from, 200)
			again := caller.wait("the retransmitted 200", 2, responsesTo(inv, 200)).msg.(*sip.Response)
			if again.StatusCode != 200 || again.To().Value() != ok.To().Value() {
				t.Errorf("retransmission %d, To %s; first %d, To %s", again.StatusCode, again.To().Value(), ok.StatusCode, ok.To().Value())
			}
			if vias := again.GetHeaders("Via"); len(vias) != 1 || vias[0].Value() != inv.Via().Value() {
				t.Errorf("retransmission's Vias %v, want the caller's alone", vias)
			}
			caller.send(c.addr, caller.inDialog(sip.ACK, ok, 1))
			callee.waitRequest(sip.ACK, id, 1)
			c.ended(t)
		})
	}
}
