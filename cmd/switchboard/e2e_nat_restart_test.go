package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// crash ends the proxy with SIGKILL and starts it again with the same
// folder (config, key, node ID, store files) and sockets.
func (p *proxy) crash(t *testing.T) *proxy {
	t.Helper()
	p.kill(t)
	return launchProxy(t, p.ConfigPath, p.watch, p.listens, p.under)
}

// count returns how many messages starting with prefix ua has read.
func (ua *natUA) count(prefix string) int {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	n := 0
	for _, m := range ua.got {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// TestNATKeepaliveRestart registers a phone behind NAT, restarts the proxy
// (SIGTERM, and SIGKILL as a crash would) and checks that the pings come
// back, from the proxy's SIP socket, with no new REGISTER: the pinger is
// rebuilt from the location store (bolt, the default).
func TestNATKeepaliveRestart(t *testing.T) {
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			cfg, httpAddr := natConfig(t)
			p := startProxy(t, cfg)
			ua := newNATUA(t, true)
			ua.register(p, "natted", "10.0.0.5:5060")
			ua.wait("a ping", "OPTIONS ", 1)
			if how == "SIGTERM" {
				p = p.restart(t)
			} else {
				p = p.crash(t)
			}
			before := ua.count("OPTIONS ")
			for n := 1; n <= 2; n++ {
				ping, from := ua.wait("a ping after the restart", "OPTIONS ", before+n)
				if from != p.UDP || !strings.HasPrefix(ping, "OPTIONS sip:natted@10.0.0.5:5060 SIP/2.0") {
					t.Errorf("ping %d after the restart, from %s (want %s):\n%s", n, from, p.UDP, ping)
				}
			}
			if !p.logSays("keepalives restored from the location store", 5*time.Second) || !strings.Contains(p.log.String(), "bindings=1") {
				t.Errorf("the restore is not logged:\n%s", tail(p.log.String(), 3000))
			}
			var view struct {
				Pinged []struct {
					AOR        string    `json:"aor"`
					LastAnswer time.Time `json:"last_answer"`
				} `json:"pinged"`
			}
			deadline := time.Now().Add(10 * time.Second)
			for adminGet(t, httpAddr, "/admin/keepalives", &view); len(view.Pinged) != 1 || view.Pinged[0].LastAnswer.IsZero(); adminGet(t, httpAddr, "/admin/keepalives", &view) {
				if time.Now().After(deadline) {
					t.Fatalf("pinged %+v after the restart, want natted, answered", view.Pinged)
				}
				time.Sleep(50 * time.Millisecond)
			}
			var regs []struct {
				Bindings []struct {
					Node  string `json:"node"`
					Local string `json:"local"`
				} `json:"bindings"`
			}
			adminGet(t, httpAddr, "/admin/registrations?aor=natted", &regs)
			if len(regs) != 1 || len(regs[0].Bindings) != 1 || len(regs[0].Bindings[0].Node) != 32 || regs[0].Bindings[0].Local != p.UDP {
				t.Errorf("registrations %+v, want natted's binding held by this node's ID, at %s", regs, p.UDP)
			}
			if n := ua.count("SIP/2.0 "); n != 1 {
				t.Errorf("the phone read %d responses: it registered once", n)
			}
		})
	}
}

// TestNATKeepaliveRestartShared runs two proxies on one Redis: a phone
// behind NAT registers through A; after both restart, A pings it again
// and B, which never held its mapping, does not.
func TestNATKeepaliveRestartShared(t *testing.T) {
	t.Parallel()
	redis := storeRedis(t)
	cfg, _ := natConfig(t)
	cfg = strings.Replace(cfg, "[http]", fmt.Sprintf("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:%d/0\"\nprefix = \"e2e:\"\n\n[http]", redis.port), 1)
	cfgB := cfg[:strings.Index(cfg, "[http]")] // one admin API port: A's
	a := startProxy(t, cfg)
	b := startProxy(t, cfgB)
	ua := newNATUA(t, true)
	ua.register(a, "natted", "10.0.0.5:5060")
	ua.wait("a ping", "OPTIONS ", 1)
	b = b.restart(t)
	a = a.crash(t)
	before := ua.count("OPTIONS ")
	for n := 1; n <= 3; n++ {
		if _, from := ua.wait("a ping after the restart", "OPTIONS ", before+n); from != a.UDP {
			t.Errorf("ping %d after the restarts came from %s, not from A (%s)", n, from, a.UDP)
		}
	}
	if !a.logSays("keepalives restored from the location store", 5*time.Second) {
		t.Errorf("A does not log its restore:\n%s", tail(a.log.String(), 3000))
	}
	if strings.Contains(b.log.String(), "keepalives restored") {
		t.Errorf("B restored pings of a binding it does not hold:\n%s", tail(b.log.String(), 3000))
	}
}

// TestNATMappingKeptAcrossRestart: the home router forgets a UDP mapping
// after restartNATTimeout seconds of silence, and the proxy pings every
// second. The proxy restarts (SIGTERM, in the middle of a call) or crashes
// (SIGKILL) right after a ping, and the phone does not register again: the
// pings resume from the location store, span twice the router's timeout,
// the mapping is still there (conntrack shows it), and the caller's BYE,
// or after the crash a new call, reaches the phone through it. The
// router's timeout is longer than TestNATMappingKeptOpen's 3 s: the
// mapping must outlive the restart itself, which takes a few seconds for
// a binary built with -race on a busy machine.
func TestNATMappingKeptAcrossRestart(t *testing.T) {
	t.Parallel()
	requireTool(t, "conntrack", "conntrack")
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			lab := homeLab(t)
			lab.udpTimeouts("router", restartNATTimeout)
			p := startLabProxy(t, lab, natKeepalive(t, "1s"))
			alice := newUDPPhone(t, lab, "home", labHome+":5060", labProxy+":5060", "alice", labDomain)
			bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
			alice.mustRegister()
			bob.mustRegister()
			var b, a *natCall
			if how == "SIGTERM" {
				b, a = connect(t, bob, alice)
			}
			waitPings(t, alice, alice.pings.Load()+1)
			if how == "SIGTERM" {
				p.restart(t)
			} else {
				p.crash(t)
			}
			waitPings(t, alice, alice.pings.Load()+2*restartNATTimeout+1)
			if !conntrackHas(t, lab, "router") {
				t.Fatal("the router forgot the phone's mapping across the restart")
			}
			if p, a := alice.pings.Load(), alice.answered.Load(); p != a {
				t.Errorf("the phone answered %d of %d keepalives", a, p)
			}
			if how == "SIGKILL" {
				b, a = connect(t, bob, alice)
			}
			hangUpCall(t, b, a)
		})
	}
}

// restartNATTimeout is the home router's UDP timeout, in seconds, in
// TestNATMappingKeptAcrossRestart.
const restartNATTimeout = 8

// waitPings waits until phone has got n keepalives.
func waitPings(t *testing.T, phone *natPhone, n int32) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for phone.pings.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the phone got %d keepalives in 45 s, want %d", phone.pings.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
