package engine

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/uac"
)

// coreTrunk sends every request that opens a dialog or stands alone to
// To, answering its challenges with the account of trunkAccounts.
type coreTrunk struct {
	To string `toml:"to"`
}

// trunkAccounts has an account in the realm "trunk": the name of the
// phone that plays the trunk, which its challenges name.
var trunkAccounts = func() *uac.Accounts {
	a, err := uac.ParseAccounts("proxy:trunk:"+strings.Repeat("a", 32)+":-\n", "test")
	if err != nil {
		panic(err)
	}
	return a
}()

func (s *coreTrunk) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	if inDialog(ctx.Request) {
		return pipeline.Continue, nil
	}
	var u sip.Uri
	if err := sip.ParseUri(s.To, &u); err != nil {
		return pipeline.Continue, err
	}
	ctx.Targets = []pipeline.Target{{URI: u, Credentials: trunkAccounts}}
	return pipeline.Continue, nil
}

var registerTrunkStage = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "core_trunk", Description: "test", New: func() pipeline.Stage { return new(coreTrunk) }})
})

// challenging is a trunk's script: an INVITE without Proxy-Authorization
// (every INVITE, with always) gets 407, one with it 200; an ACK gets
// nothing, any other request 200.
func challenging(always bool) script {
	return func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		switch {
		case req.IsInvite() && (always || req.GetHeader("Proxy-Authorization") == nil):
			ph.reply(req, from, 407)
		case req.IsAck():
		default:
			ph.reply(req, from, 200)
		}
	}
}

// TestChallengeAnswered has a trunk challenge the INVITE with 407: the
// proxy sends it again with credentials and the next CSeq, the caller
// sees only the 200, and the caller's ACK and BYE reach the trunk with
// their CSeq raised by one, their answers coming back with the caller's
// own numbers. A trunk that challenges again gets its 407 to the caller.
func TestChallengeAnswered(t *testing.T) {
	registerTrunkStage()
	tests := []struct {
		name   string
		always bool
	}{
		{"answered", false},
		{"challenged again", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trunk := newPhone(t, "trunk", challenging(tc.always))
			c := newCore(t, `
[[stage]]
use = "parse"
[[stage]]
use = "record_route"
[[stage]]
use = "core_trunk"
to  = "sip:0900@`+trunk.addr()+`"
[[stage]]
use = "forward"
`)
			caller := newPhone(t, "alice", nil)
			id := "challenge-" + strings.ReplaceAll(tc.name, " ", "-")
			inv := caller.call(c, "0900", id)
			final := caller.waitResponse(inv, 200)
			second, _ := trunk.waitRequest(sip.INVITE, id, 2)
			first, _ := trunk.waitRequest(sip.INVITE, id, 1)
			if first.CSeq().SeqNo != 1 || second.CSeq().SeqNo != 2 {
				t.Errorf("the trunk's INVITEs have CSeq %d and %d, want 1 and 2", first.CSeq().SeqNo, second.CSeq().SeqNo)
			}
			auth := second.GetHeader("Proxy-Authorization")
			if auth == nil || !strings.Contains(auth.Value(), `username="proxy"`) || !strings.Contains(auth.Value(), `realm="trunk"`) {
				t.Fatalf("the second INVITE's Proxy-Authorization is %v", auth)
			}
			if tc.always {
				if final.StatusCode != 407 || final.CSeq().SeqNo != 1 {
					t.Errorf("caller got %d with CSeq %d, want the second 407 with CSeq 1", final.StatusCode, final.CSeq().SeqNo)
				}
				if n := len(trunk.find(requestsOf(sip.INVITE, id))); n != 2 {
					t.Errorf("the trunk read %d INVITEs, want 2", n)
				}
				return
			}
			if final.StatusCode != 200 || final.CSeq().SeqNo != 1 {
				t.Fatalf("caller got %d with CSeq %d, want 200 with CSeq 1", final.StatusCode, final.CSeq().SeqNo)
			}
			if codes := caller.codes(inv); slices.Contains(codes, 407) {
				t.Errorf("the caller saw the challenge: %v", codes)
			}
			caller.send(c.addr, caller.inDialog(sip.ACK, final, 1))
			if ack, _ := trunk.waitRequest(sip.ACK, id, 2); ack.CSeq().SeqNo != 2 {
				t.Errorf("the trunk's ACK of the 200 has CSeq %d, want 2", ack.CSeq().SeqNo)
			}
			bye := caller.inDialog(sip.BYE, final, 2)
			caller.send(c.addr, bye)
			if got, _ := trunk.waitRequest(sip.BYE, id, 1); got.CSeq().SeqNo != 3 {
				t.Errorf("the trunk's BYE has CSeq %d, want 3", got.CSeq().SeqNo)
			}
			if res := caller.waitResponse(bye, 200); res.StatusCode != 200 {
				t.Errorf("the caller's BYE got %d", res.StatusCode)
			}
			c.ended(t)
		})
	}
}
