package main

// End-to-end tests of phones behind NAT (docs/nat.md): the phones write
// private addresses in their Via and Contact, as a phone behind a home
// router does, and send from loopback, as the router's public address.
// The tests run in a network namespace of their own with the private
// addresses on loopback, where a sink on each counts what reaches it:
// nothing may, and nothing leaves the machine if the proxy errs.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The private addresses of the NAT tests' phones; not port 5060, which
// the default config's proxy takes on every address.
const (
	natCallerPrivate = "192.168.1.20:5070"
	natCalleePrivate = "10.0.0.5:5072"
)

// natLoopPhone is a callee behind NAT: it registers with its private Contact
// from its loopback socket, answers INVITE with 180 and 200, any other
// request but ACK with 200, and records the requests it gets.
type natLoopPhone struct {
	t    *testing.T
	pc   net.PacketConn
	user string

	mu   sync.Mutex
	got  []*sip.Request
	regs chan *sip.Response
}

func natStartPhone(t *testing.T, user string) *natLoopPhone {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(calleeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ph := &natLoopPhone{t: t, pc: pc, user: user, regs: make(chan *sip.Response, 8)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(slices.Clone(buf[:n]))
			if err != nil {
				continue
			}
			if res, ok := msg.(*sip.Response); ok {
				if res.CSeq() != nil && res.CSeq().MethodName == sip.REGISTER {
					ph.regs <- res
				}
				continue
			}
			req := msg.(*sip.Request)
			ph.mu.Lock()
			ph.got = append(ph.got, req)
			ph.mu.Unlock()
			answer := func(code int, reason string) {
				res := sip.NewResponseFromRequest(req, code, reason, nil)
				if !req.To().Params.Has("tag") {
					res.To().Params.Add("tag", dlgCalleeTag)
				}
				if code > 100 && code < 300 {
					res.AppendHeader(sip.NewHeader("Contact", "<"+ph.contact()+">"))
				}
				_, _ = pc.WriteTo([]byte(res.String()), from)
			}
			switch {
			case req.IsAck():
			case req.IsInvite() && !req.To().Params.Has("tag"):
				answer(180, "Ringing")
				answer(200, "OK")
			default:
				answer(200, "OK")
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return ph
}

func (ph *natLoopPhone) contact() string { return "sip:" + ph.user + "@" + natCalleePrivate }

// register binds the phone's private Contact through the proxy at addr.
func (ph *natLoopPhone) register(addr string) {
	ph.t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		ph.t.Fatal(err)
	}
	ua := &secUA{t: ph.t, local: natCalleePrivate}
	req := ua.build(secReq{Method: "REGISTER", URI: "sip:" + natDomain, From: ph.user + "@" + natDomain, To: ph.user + "@" + natDomain, Contact: ph.contact()},
		"nat-reg-"+secRandom(), secRandom(), 1, "z9hG4bK-nat-"+secRandom(), "")
	if _, err := ph.pc.WriteTo([]byte(req), dst); err != nil {
		ph.t.Fatal(err)
	}
	select {
	case res := <-ph.regs:
		if res.StatusCode != 200 {
			ph.t.Fatalf("REGISTER answered %d %s", res.StatusCode, res.Reason)
		}
	case <-time.After(secWait):
		ph.t.Fatal("REGISTER: no answer")
	}
}

// received returns the requests of the phone's with the method and CSeq.
func (ph *natLoopPhone) received(method string, cseq int) []*sip.Request {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	var out []*sip.Request
	for _, r := range ph.got {
		if string(r.Method) == method && int(r.CSeq().SeqNo) == cseq {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until the phone got the request with the method and CSeq.
func (ph *natLoopPhone) waitFor(method string, cseq int) *sip.Request {
	ph.t.Helper()
	deadline := time.Now().Add(secWait)
	for {
		if got := ph.received(method, cseq); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			ph.t.Fatalf("the phone behind NAT got no %s (CSeq %d)", method, cseq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// natDomain is the domain of the default config.toml.
const natDomain = "switchboard.local"

// natSinks listens on the private addresses and counts what reaches them.
func natSinks(t *testing.T) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	for _, addr := range []string{natCallerPrivate, natCalleePrivate} {
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 65535)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				n.Add(1)
			}
		}()
		t.Cleanup(func() { pc.Close(); <-done })
	}
	return &n
}

// natInNetns runs the calling test again in a network namespace of its
// own with the private addresses on loopback, and returns false; in the
// namespace it returns true and the test goes on.
func natInNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SWITCHBOARD_NAT_NETNS") == "1" {
		return true
	}
	t.Parallel()
	requireE2E(t)
	var addrs []string
	for _, a := range []string{natCallerPrivate, natCalleePrivate} {
		host, _, _ := net.SplitHostPort(a)
		addrs = append(addrs, host)
	}
	reexecInNetns(t, t.Name(), "SWITCHBOARD_NAT_NETNS", addrs)
	return false
}

// TestNATDefaultConfig runs the default config.toml as it is (port 5060
// on every address of the namespace, a bolt store beside it) and calls a
// callee behind NAT from a caller behind NAT: the re-INVITEs and the BYE,
// from either side, reach the other phone through its NAT and get 200,
// also after a restart of the proxy in the middle of the call.
func TestNATDefaultConfig(t *testing.T) {
	if !natInNetns(t) {
		return
	}
	strays := natSinks(t)
	config, err := os.ReadFile(filepath.Join("..", "..", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgPath, config, 0o644); err != nil {
		t.Fatal(err)
	}
	p := launchProxy(t, cfgPath, false, nil, nil)
	const proxyAddr = "127.0.0.1:5060"

	callee := natStartPhone(t, "bob")
	callee.register(proxyAddr)
	caller := secNewUA(t, callerIP, proxyAddr)
	caller.local = natCallerPrivate
	call := dlgInviteTo(t, caller, "alice@"+natDomain, "bob@"+natDomain, "", true)
	if got := callee.waitFor("INVITE", 1).Recipient.String(); got != callee.contact() {
		t.Errorf("the INVITE reached the callee with Request-URI %s, want its Contact %s", got, callee.contact())
	}
	call.send("ACK", "", "", nil)
	callee.waitFor("ACK", 1)

	reinvite := func() {
		t.Helper()
		if codes := call.send("INVITE", "", "", nil); dlgLast(codes) != 200 {
			t.Fatalf("re-INVITE: responses %v, want 200", codes)
		}
		call.send("ACK", "", "", nil)
		callee.waitFor("ACK", call.cseq)
	}
	reinvite()
	p = p.restart(t)
	reinvite()
	if codes := call.send("BYE", "", "", nil); dlgLast(codes) != 200 {
		t.Fatalf("BYE after the restart: responses %v, want 200", codes)
	}
	callee.waitFor("BYE", call.cseq)
	if n := strays.Load(); n > 0 {
		t.Errorf("%d datagrams went to the phones' private addresses", n)
	}
	_ = p
}

// TestNATThroughPath runs two proxies on one redis-server, with the
// registrar's path on: a phone behind NAT registers with A, and a call
// placed through B reaches it through A (along the binding's Path), which
// alone holds its NAT mapping; the caller's BYE reaches it too.
func TestNATThroughPath(t *testing.T) {
	if !natInNetns(t) {
		return
	}
	strays := natSinks(t)
	redis := storeRedis(t)
	config := strings.Replace(testConfig(), "use = \"registrar\"", "use = \"registrar\"\npath = true", 1) +
		fmt.Sprintf("\n[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:%d/0\"\nprefix = %q\n", redis.port, "nat:")
	config = strings.Replace(config, fmt.Sprintf("domains = [%q]", proxyDomain), fmt.Sprintf("domains = [%q]", natDomain), 1)
	a := startProxy(t, config)
	b := startProxy(t, config)

	callee := natStartPhone(t, "bob")
	callee.register(a.UDP)
	caller := secNewUA(t, callerIP, b.UDP)
	caller.local = natCallerPrivate
	call := dlgInviteTo(t, caller, "alice@"+natDomain, "bob@"+natDomain, "", true)
	slices.Reverse(call.routes) // the caller's route set (RFC 3261 12.1.2): four entries, two proxies
	inv := callee.waitFor("INVITE", 1)
	if got := inv.Recipient.String(); got != callee.contact() {
		t.Errorf("the INVITE reached the callee with Request-URI %s, want its Contact %s", got, callee.contact())
	}
	// Both recorded their route, twice each (UDP and TCP): A, then B.
	rr := inv.GetHeaders("Record-Route")
	if len(rr) != 4 || !strings.Contains(rr[0].Value(), a.UDP) || !strings.Contains(rr[3].Value(), b.UDP) {
		t.Errorf("Record-Route %v, want A's (%s) on top and B's (%s) at the bottom", rr, a.UDP, b.UDP)
	}
	call.send("ACK", "", "", nil)
	callee.waitFor("ACK", 1)
	if codes := call.send("BYE", "", "", nil); dlgLast(codes) != 200 {
		t.Fatalf("BYE through B and A: responses %v, want 200", codes)
	}
	callee.waitFor("BYE", call.cseq)
	if n := strays.Load(); n > 0 {
		t.Errorf("%d datagrams went to the phones' private addresses", n)
	}
}
