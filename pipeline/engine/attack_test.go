package engine

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestAttackRingingCallee is the transaction exhaustion attack at full
// size, with the default [server] limits: an attacker's phone that only
// rings (and answers a CANCEL with 200, never with 487), and INVITEs to it
// from one address at 111 a second, each cancelled at its 180, under one
// user or under many (an open registrar lets the attacker register as many
// as it likes). Meanwhile another caller calls another user every second
// and must be served. It runs with `make attack-transactions`
// (SWITCHBOARD_ATTACK_TRANSACTIONS=1); SWITCHBOARD_ATTACK_SECONDS sets the
// length of each of its two runs (30 s).
func TestAttackRingingCallee(t *testing.T) {
	if os.Getenv("SWITCHBOARD_ATTACK_TRANSACTIONS") == "" {
		t.Skip("a full-size attack: make attack-transactions")
	}
	seconds := 30
	if _, err := fmt.Sscan(os.Getenv("SWITCHBOARD_ATTACK_SECONDS"), &seconds); err != nil {
		seconds = 30
	}
	for _, users := range []int{1, 1000} {
		t.Run(fmt.Sprintf("%d users", users), func(t *testing.T) {
			e := forwardingEngine(t, "", "")
			proxy := e.testAddr("UDP")
			attackerPhone := newPeer(t, "127.0.0.1", ringing("200"))
			victimPhone := newPeer(t, "127.0.0.1", ringing("200"))
			attacker := newPeer(t, "127.0.0.2", nil)
			caller := newPeer(t, "127.0.0.3", nil)
			codes := map[int]int{}
			seen := map[string]bool{}
			served, refused := 0, 0
			tick := time.NewTicker(time.Second / 111)
			defer tick.Stop()
			end := time.Now().Add(time.Duration(seconds) * time.Second)
			nextCall := time.Now()
			var peakHeld, peakInFlight int64
			for i := 0; time.Now().Before(end); i++ {
				<-tick.C
				inv := attacker.invite(fmt.Sprintf("sip:a%d@%s", i%users, attackerPhone.addr()), fmt.Sprintf("attack-%d", i))
				attacker.send(proxy, inv)
				// Cancel each call that rings, as the attack did.
				drain(attacker, codes, seen, proxy)
				peakHeld, peakInFlight = max(peakHeld, e.held()), max(peakInFlight, e.InFlight())
				if time.Now().After(nextCall) {
					nextCall = nextCall.Add(time.Second)
					call := caller.invite("sip:bob@"+victimPhone.addr(), fmt.Sprintf("legit-%d", i))
					caller.send(proxy, call)
					if res := caller.response(call, 180, 2*time.Second); res != nil && res.StatusCode == 180 {
						served++
						caller.send(proxy, cancelOf(call))
					} else {
						refused++
						t.Logf("%s: the other caller's call was answered %v", time.Now().Format("15:04:05"), res)
					}
				}
			}
			t.Logf("attacker's INVITEs, by their first answer: %v; at most %d transactions held, %d in flight; the other caller: %d calls rang, %d did not",
				codes, peakHeld, peakInFlight, served, refused)
			if refused > 0 {
				t.Errorf("%d of the other caller's %d calls did not ring", refused, served+refused)
			}
			// The cancelled calls end 64*T1 after their CANCEL.
			deadline := time.Now().Add(64*sip.T1 + 5*time.Second)
			for e.InFlight() > 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// drain counts the calls of the attacker by the first answer each got
// after the 100, and cancels those that ring.
func drain(p *peer, codes map[int]int, seen map[string]bool, proxy string) {
	for {
		select {
		case m := <-p.in:
			res, ok := (*m).(*sip.Response)
			if !ok || res.CSeq() == nil || res.CSeq().MethodName != sip.INVITE || res.StatusCode == 100 {
				continue
			}
			if seen[callID(res)] {
				continue
			}
			seen[callID(res)] = true
			codes[res.StatusCode]++
			if res.StatusCode == 180 {
				inv := p.invite(res.To().Address.String(), callID(res))
				p.send(proxy, cancelOf(inv))
			}
		default:
			return
		}
	}
}
