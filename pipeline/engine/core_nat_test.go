package engine

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The private addresses the NAT test's phones write in their Via and
// Contact. The test runs in a network namespace of its own where they are
// on loopback, with a sink on each that counts what reaches it: nothing
// may, and nothing leaves the machine if the proxy errs.
const (
	natCallerPrivate = "192.168.1.20:5060"
	natCalleePrivate = "10.0.0.5:5060"
)

// TestCoreNAT calls a callee behind NAT from a caller behind NAT: the
// INVITE, the ACK, a re-INVITE and an UPDATE from each side, and the BYE
// reach each phone at the address its packets came from, never at the
// private address its Via and Contact name, and each phone sees its own
// Contact as the Request-URI.
func TestCoreNAT(t *testing.T) {
	if !natInNetns(t) {
		return
	}
	var strays atomic.Int32
	for _, addr := range []string{natCallerPrivate, natCalleePrivate} {
		sink, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		serveUDP(t, sink.(*net.UDPConn), func([]byte, *net.UDPAddr) { strays.Add(1) })
	}
	c := newCore(t, productChain)
	caller := newPhone(t, "alice", answering(nil, 200))
	caller.private = natCallerPrivate
	callee := newPhone(t, "bob", answering(nil, 200))
	callee.private = natCalleePrivate
	c.register(callee, "bob")

	ok, branch := c.call(t, caller, callee, "bob", "nat-1")
	if branch.Recipient.String() != callee.contact() {
		t.Errorf("the callee's INVITE went to %s, want its Contact %s", branch.Recipient.String(), callee.contact())
	}
	seq := 2
	for _, method := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		for _, fromCallee := range []bool{false, true} {
			sender, receiver, req := caller, callee, caller.inDialog(method, ok, seq)
			if fromCallee {
				sender, receiver, req = callee, caller, callee.calleeRequest(method, branch, seq)
			}
			sender.send(c.addr, req)
			if res := sender.waitResponse(req, 200); res.StatusCode != 200 {
				t.Fatalf("%s from %s answered %d", method, sender.name, res.StatusCode)
			}
			got := receiver.wait(string(method), 1, func(m sip.Message) bool {
				r, ok := m.(*sip.Request)
				return ok && r.Method == method && r.CSeq().SeqNo == uint32(seq)
			}).msg.(*sip.Request)
			if got.Recipient.String() != receiver.contact() {
				t.Errorf("%s reached %s with Request-URI %s, want its Contact", method, receiver.name, got.Recipient.String())
			}
			if method == sip.INVITE {
				if fromCallee {
					ack := callee.calleeRequest(sip.ACK, branch, seq)
					callee.send(c.addr, ack)
				} else {
					caller.send(c.addr, caller.inDialog(sip.ACK, ok, seq))
				}
				receiver.wait("the ACK of the re-INVITE", 1, func(m sip.Message) bool {
					r, ok := m.(*sip.Request)
					return ok && r.IsAck() && r.CSeq().SeqNo == uint32(seq)
				})
			}
			seq++
		}
	}
	bye := caller.inDialog(sip.BYE, ok, seq)
	caller.send(c.addr, bye)
	if res := caller.waitResponse(bye, 200); res.StatusCode != 200 {
		t.Fatalf("BYE answered %d", res.StatusCode)
	}
	c.ended(t)
	if n := strays.Load(); n > 0 {
		t.Errorf("%d datagrams went to the phones' private addresses", n)
	}
}

// natInNetns runs the calling test again in a network namespace of its
// own (unshare -n) with loopback up and the phones' private addresses on
// it, and returns false: the caller returns at once. In the namespace it
// returns true and the test goes on.
func natInNetns(t *testing.T) bool {
	t.Helper()
	const env = "SWITCHBOARD_NAT_NETNS"
	if os.Getenv(env) == "1" {
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is not installed: this test needs it to run in a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is not installed: this test needs it to set up loopback in a network namespace")
	}
	script := "ip link set lo up"
	for _, a := range []string{natCallerPrivate, natCalleePrivate} {
		host, _, _ := net.SplitHostPort(a)
		script += " && ip addr add " + host + "/32 dev lo"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "sh", "-c", script+` && exec "$0" "$@"`,
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace (unshare -n):\n%s", out)
	if err != nil {
		t.Fatalf("the test in the network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("the test in the network namespace did not run")
	}
	return false
}
