package engine

import (
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestFinalNotAmplified sends an INVITE over UDP from an address that
// never ACKs (one an attacker put in the Via and the datagram's source)
// and counts the copies of the non-2xx final response it receives: two,
// not the eleven of RFC 3261's Timer G until Timer H. Each retransmission
// of the INVITE gets the response once more.
func TestFinalNotAmplified(t *testing.T) {
	e := forwardingEngine(t, "", "")
	callee := newPeer(t, "127.0.0.1", func(p *peer, req *sip.Request, from *net.UDPAddr) {
		if req.IsInvite() {
			p.answer(req, from, 486, "Busy Here")
		}
	})
	victim := newPeer(t, "127.0.0.1", nil)
	proxy := e.testAddr("UDP")
	inv := victim.invite("sip:bob@"+callee.addr(), "amplify")
	victim.send(proxy, inv)
	// Timer G would send it at 0, 0.5 and 1.5 s: three in 2 s.
	count := func(wait time.Duration) int {
		n := 0
		for victim.response(inv, 300, wait) != nil {
			n++
		}
		return n
	}
	if n := count(2 * time.Second); n != 2 {
		t.Errorf("the 486 was sent %d times in 2 s, want 2", n)
	}
	for i := range 2 {
		victim.send(proxy, inv)
		if n := count(time.Second); n != 1 {
			t.Errorf("retransmission %d of the INVITE got %d copies of the 486, want 1", i+1, n)
		}
	}
}
