package engine

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestMaxForwards checks RFC 3261 16.3 step 3 and 16.6 step 3 through the
// engine: a request with Max-Forwards 0 is answered 483 and never
// forwarded (sipgo v1.7.3's MaxForwardsHeader.Dec wrapped 0 to 2^32-1),
// and one with 1 leaves with 0.
func TestMaxForwards(t *testing.T) {
	e := forwardingEngine(t, "", "")
	proxy := e.testAddr("UDP")
	got := make(chan string, 8)
	callee := newPeer(t, "127.0.0.1", func(p *peer, req *sip.Request, from *net.UDPAddr) {
		mf := "none"
		if h := req.MaxForwards(); h != nil {
			mf = strconv.Itoa(int(h.Val()))
		}
		got <- mf
		p.answer(req, from, 200, "OK")
	})
	caller := newPeer(t, "127.0.0.2", nil)
	tests := []struct {
		maxForwards string
		code        int
		forwarded   string // the Max-Forwards the callee got, "" for not forwarded
	}{
		{"0", 483, ""},
		{"1", 200, "0"},
		{"70", 200, "69"},
	}
	for i, tc := range tests {
		req := caller.request(sip.OPTIONS, "sip:bob@"+callee.addr(), "mf-"+strconv.Itoa(i), 1)
		req.ReplaceHeader(sip.NewHeader("Max-Forwards", tc.maxForwards))
		caller.send(proxy, req)
		res := caller.response(req, 200, 2*time.Second)
		if res == nil || res.StatusCode != tc.code {
			t.Errorf("test %d (Max-Forwards %s): %v, want %d", i, tc.maxForwards, res, tc.code)
		}
		select {
		case mf := <-got:
			if mf != tc.forwarded {
				t.Errorf("test %d (Max-Forwards %s): forwarded with %s, want %q", i, tc.maxForwards, mf, tc.forwarded)
			}
		default:
			if tc.forwarded != "" {
				t.Errorf("test %d (Max-Forwards %s): not forwarded", i, tc.maxForwards)
			}
		}
	}
}
