package engine

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// shortT1 sets T1 to d for the test: the wait for a 487 after a CANCEL
// (64*T1) is then 64*d. Timer I, which keeps an ACKed INVITE transaction,
// is cut to 4*d.
func shortT1(t *testing.T, d time.Duration) {
	t1, i := sip.T1, sip.Timer_I
	sip.T1, sip.Timer_I = d, 4*d
	t.Cleanup(func() { sip.T1, sip.Timer_I = t1, i })
}

// TestCancelReleasesBranch plays the attack on a phone that only rings:
// the caller cancels, and the callee answers the CANCEL with 200 (or not
// at all) and never sends the 487. The branch ends 64*T1 after the CANCEL
// (RFC 3261 9.1), not at Timer C, and the caller gets its 487 then.
func TestCancelReleasesBranch(t *testing.T) {
	shortT1(t, 20*time.Millisecond) // 64*T1 = 1.28 s
	// One engine for every case: sipgo's tracer is a global that New sets.
	e := forwardingEngine(t, "", `invite_timeout = "60s"`)
	for _, tc := range []struct {
		name   string
		cancel string
	}{
		{"callee answers the CANCEL with 200", "200"},
		{"callee never answers the CANCEL", ""},
		{"callee rings again after the CANCEL", "200+180"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			callee := newPeer(t, "127.0.0.1", ringing(tc.cancel))
			caller := newPeer(t, "127.0.0.1", nil)
			inv := caller.invite("sip:bob@"+callee.addr(), "cancel-"+tc.cancel)
			caller.send(e.testAddr("UDP"), inv)
			if res := caller.response(inv, 180, 5*time.Second); res == nil {
				t.Fatal("no 180")
			}
			sent := time.Now()
			caller.send(e.testAddr("UDP"), cancelOf(inv))
			if res := caller.response(cancelOf(inv), 200, 5*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("CANCEL answered %v, want 200", res)
			}
			res := caller.response(inv, 200, 5*time.Second)
			if res == nil || res.StatusCode != 487 {
				t.Fatalf("INVITE answered %v, want 487", res)
			}
			t.Logf("487 %s after the CANCEL", time.Since(sent).Round(time.Millisecond))
			caller.send(e.testAddr("UDP"), ackOf(inv, res))
			// Timer I absorbs ACK retransmissions once the 487 is ACKed.
			waitEnded(t, e, 64*sip.T1+sip.Timer_I+2*time.Second)
			t.Logf("transaction ended %s after the CANCEL", time.Since(sent).Round(time.Millisecond))
		})
	}
}
