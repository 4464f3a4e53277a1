package main

// The NAT tests build real NATs from network namespaces: a phone at a
// private address in "home", a router that masquerades (nftables), and the
// proxy with the default config.toml in "public". Nothing leaves the
// machine: the namespaces have no route out.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The lab's addresses.
const (
	labProxy     = "203.0.113.1" // the proxy, in public
	labProxyB    = "203.0.113.5" // a second proxy, in public
	labPublic    = "203.0.113.10"
	labRouterOut = "203.0.113.2" // the home router's public side
	labHome      = "192.168.1.20"
	labDomain    = "switchboard.local" // the default config's domain
)

// homeLab builds home (a phone at 192.168.1.20) behind router (192.168.1.1
// inside, 203.0.113.2 outside, masquerading) and public (the proxy at
// 203.0.113.1 and a phone at 203.0.113.10).
func homeLab(t *testing.T) *netLab {
	t.Helper()
	lab := newNetLab(t)
	for _, h := range []string{"home", "router", "public"} {
		lab.host(h)
	}
	lab.link("home", labHome+"/24", "router", "192.168.1.1/24")
	out, pub := lab.link("router", labRouterOut+"/24", "public", labProxy+"/24")
	lab.in("public", "ip", "addr", "add", labPublic+"/24", "dev", pub)
	lab.in("public", "ip", "addr", "add", labProxyB+"/24", "dev", pub)
	lab.route("home", "192.168.1.1")
	lab.masquerade("router", out)
	return lab
}

// defaultConfig is the repository's config.toml, the one `make run` uses,
// with extra appended.
func defaultConfig(t *testing.T, extra string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// A drain shorter than the harness's stop timeout, as testConfig's.
	return strings.Replace(string(data), "[server]\n", "[server]\ndrain_timeout = \"5s\"\n", 1) + extra
}

// startLabProxy runs the proxy with config in the lab's public host.
func startLabProxy(t *testing.T, lab *netLab, config string) *proxy {
	t.Helper()
	requireE2E(t)
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return launchProxy(t, cfgPath, false, nil, lab.under("public"))
}

// talk checks that re-INVITEs and BYEs cross the call both ways: first
// each end re-INVITEs the other, then hanger hangs up.
func talk(t *testing.T, a, b *natCall, hanger *natCall) {
	t.Helper()
	for _, pair := range [][2]*natCall{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		got := make(chan error, 1)
		go func() {
			req, err := to.expect("INVITE")
			if err == nil && req.Recipient.String() != to.p.contact() {
				t.Errorf("phone %s got its re-INVITE for %s, not its own Contact %s", to.p.user, req.Recipient.String(), to.p.contact())
			}
			got <- err
		}()
		code, err := from.request("INVITE")
		if err != nil || code != 200 {
			t.Fatalf("re-INVITE from %s to %s: %d, %v", from.p.user, to.p.user, code, err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	other := a
	if hanger == a {
		other = b
	}
	hangUpCall(t, hanger, other)
}

// hangUpCall sends a BYE from hanger and checks that other got it and that
// it was answered 200.
func hangUpCall(t *testing.T, hanger, other *natCall) {
	t.Helper()
	got := make(chan error, 1)
	go func() { _, err := other.expect("BYE"); got <- err }()
	code, err := hanger.request("BYE")
	if err != nil || code != 200 {
		t.Fatalf("BYE from %s to %s: %d, %v", hanger.p.user, other.p.user, code, err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// connect has caller call callee's user, and returns both ends once
// answered.
func connect(t *testing.T, caller, callee *natPhone) (*natCall, *natCall) {
	t.Helper()
	answered := make(chan *natCall, 1)
	errs := make(chan error, 1)
	go func() {
		c, err := callee.answer()
		if err != nil {
			errs <- err
			return
		}
		answered <- c
	}()
	out, err := caller.call(callee.user)
	if err != nil {
		t.Fatalf("%s calls %s: %v", caller.user, callee.user, err)
	}
	select {
	case in := <-answered:
		return out, in
	case err := <-errs:
		t.Fatal(err)
	}
	return nil, nil
}

// TestNATHomePhone: with the default config.toml, a UDP phone behind a home
// router registers with its private Contact, is called, and calls out; the
// re-INVITEs and BYEs of both calls reach both ends.
func TestNATHomePhone(t *testing.T) {
	t.Parallel()
	lab := homeLab(t)
	startLabProxy(t, lab, defaultConfig(t, ""))
	alice := newUDPPhone(t, lab, "home", labHome+":5060", labProxy+":5060", "alice", labDomain)
	bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
	alice.mustRegister()
	bob.mustRegister()

	t.Run("called", func(t *testing.T) {
		b, a := connect(t, bob, alice)
		talk(t, b, a, b)
	})
	t.Run("calls out", func(t *testing.T) {
		a, b := connect(t, alice, bob)
		talk(t, a, b, b)
	})
	t.Run("hangs up", func(t *testing.T) {
		b, a := connect(t, bob, alice)
		hangUpCall(t, a, b)
	})
	// A caller that never registered: only the dialog can tell where the
	// callee's requests go.
	t.Run("unregistered caller", func(t *testing.T) {
		dave := newUDPPhone(t, lab, "home", labHome+":5062", labProxy+":5060", "dave", labDomain)
		d, b := connect(t, dave, bob)
		talk(t, d, b, b)
	})
}

// TestNATRestartMidCall: the proxy restarts in the middle of a call to a
// phone behind NAT; the caller's re-INVITE and BYE still reach it.
func TestNATRestartMidCall(t *testing.T) {
	t.Parallel()
	lab := homeLab(t)
	p := startLabProxy(t, lab, defaultConfig(t, ""))
	alice := newUDPPhone(t, lab, "home", labHome+":5060", labProxy+":5060", "alice", labDomain)
	bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
	alice.mustRegister()
	bob.mustRegister()
	b, a := connect(t, bob, alice)
	p.restart(t)
	talk(t, b, a, b)
}

// TestNATCarrierGrade: two home routers, each with a phone at the same
// private address and port, both behind one carrier-grade NAT: each phone
// gets its own calls.
func TestNATCarrierGrade(t *testing.T) {
	t.Parallel()
	lab := newNetLab(t)
	for _, h := range []string{"home1", "router1", "home2", "router2", "cgn", "public"} {
		lab.host(h)
	}
	for i, h := range []string{"1", "2"} {
		side := []string{"0", "1"}[i] // each router has a link of its own to the CGN
		lab.link("home"+h, labHome+"/24", "router"+h, "192.168.1.1/24")
		out, _ := lab.link("router"+h, "100.64."+side+".2/24", "cgn", "100.64."+side+".1/24")
		lab.route("home"+h, "192.168.1.1")
		lab.route("router"+h, "100.64."+side+".1")
		lab.masquerade("router"+h, out)
	}
	out, pub := lab.link("cgn", labRouterOut+"/24", "public", labProxy+"/24")
	lab.in("public", "ip", "addr", "add", labPublic+"/24", "dev", pub)
	lab.masquerade("cgn", out)

	startLabProxy(t, lab, defaultConfig(t, ""))
	alice := newUDPPhone(t, lab, "home1", labHome+":5060", labProxy+":5060", "alice", labDomain)
	carol := newUDPPhone(t, lab, "home2", labHome+":5060", labProxy+":5060", "carol", labDomain)
	bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
	for _, p := range []*natPhone{alice, carol, bob} {
		p.mustRegister()
	}
	for _, callee := range []*natPhone{alice, carol, alice} {
		b, c := connect(t, bob, callee)
		talk(t, b, c, c)
	}
	for _, p := range []*natPhone{alice, carol} {
		for _, m := range p.kept {
			if _, ok := m.(*sip.Request); ok {
				t.Errorf("phone %s got a request it did not expect:\n%s", p.user, m)
			}
		}
	}
}

// TestNATStreamPhones: a TCP phone and a WebSocket phone behind the NAT are
// called over their connections; once a connection is gone, a call to its
// phone is refused at once (430 or 480), not left to time out.
func TestNATStreamPhones(t *testing.T) {
	t.Parallel()
	lab := homeLab(t)
	startLabProxy(t, lab, strings.Replace(defaultConfig(t, ""),
		`listen  = ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"]`,
		`listen  = ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060", "ws://0.0.0.0:8088"]`, 1))
	bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
	bob.mustRegister()
	for _, tc := range []struct{ transport, addr string }{{"TCP", labProxy + ":5060"}, {"WS", labProxy + ":8088"}} {
		t.Run(tc.transport, func(t *testing.T) {
			phone := newStreamPhone(t, lab, "home", labHome, tc.transport, tc.addr, "s"+strings.ToLower(tc.transport), labDomain)
			phone.mustRegister()
			b, p := connect(t, bob, phone)
			talk(t, b, p, b)
			b, p = connect(t, bob, phone)
			hangUpCall(t, p, b)

			phone.hangUp()
			start := time.Now()
			_, err := bob.call(phone.user)
			if err == nil || !(strings.Contains(err.Error(), " got 430 ") || strings.Contains(err.Error(), " got 480 ")) {
				t.Fatalf("a call to a %s phone whose connection is gone: %v; want 430 or 480", tc.transport, err)
			}
			// At once: not after a transaction timeout (Timer B, 32 s).
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the call to a phone whose connection is gone was refused after %v, not at once", d)
			}
		})
	}
}

// conntrackHas reports whether host's conntrack table has a UDP entry
// between the phone's private address and the proxy.
func conntrackHas(t *testing.T, lab *netLab, host string) bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", lab.ns(host), "conntrack", "-L", "-p", "udp", "--orig-src", labHome, "--orig-dst", labProxy).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "0 flow entries") {
		t.Fatalf("conntrack -L in %s: %v\n%s", host, err, out)
	}
	return strings.Contains(string(out), "src="+labHome)
}

// TestNATTwoProxies: two proxies share their registrations through Redis;
// a UDP phone behind NAT registered with A is called through B, which
// reaches it through A (the NAT lets in only what comes from where the
// phone sent to).
func TestNATTwoProxies(t *testing.T) {
	t.Parallel()
	lab := homeLab(t)
	redis := storeRedisIn(t, lab, "public")
	config := func(ip string) string {
		c := strings.Replace(defaultConfig(t, fmt.Sprintf("\n[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:%d/0\"\n", redis.port)),
			`listen  = ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"]`,
			fmt.Sprintf(`listen  = ["udp://%s:5060", "tcp://%s:5060"]`, ip, ip), 1)
		// Each its own admin listener: they share the namespace's loopback.
		c = strings.Replace(c, `listen = "127.0.0.1:8080"`, fmt.Sprintf(`listen = "%s:8080"`, ip), 1)
		return strings.Replace(c, "use  = \"registrar\"\n", "use  = \"registrar\"\npath = true\n", 1)
	}
	startLabProxy(t, lab, config(labProxy))
	startLabProxy(t, lab, config(labProxyB))
	alice := newUDPPhone(t, lab, "home", labHome+":5060", labProxy+":5060", "alice", labDomain)
	bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxyB+":5060", "bob", labDomain)
	alice.mustRegister()
	bob.mustRegister()
	b, a := connect(t, bob, alice)
	talk(t, b, a, a)
	a, b = connect(t, alice, bob)
	talk(t, a, b, b)
}

// natKeepalive is the default config with the registrar's keepalive pings
// to bindings behind NAT every interval ("0s": none).
func natKeepalive(t *testing.T, interval string) string {
	t.Helper()
	c := defaultConfig(t, "")
	with := strings.Replace(c, "use  = \"registrar\"\n", fmt.Sprintf("use  = \"registrar\"\nkeepalive = %q\n", interval), 1)
	if with == c {
		t.Fatal("config.toml has no registrar stage to set keepalives on")
	}
	return with
}

// TestNATMappingKeptOpen: the home router forgets a UDP mapping after 3 s of
// silence, less than the call lasts. With the proxy's keepalives, the
// callee's mapping stays open, every ping is answered, and the caller's
// re-INVITE and BYE reach the callee; without them, the mapping goes and
// the re-INVITE is lost: the keepalive is what keeps the call reachable.
func TestNATMappingKeptOpen(t *testing.T) {
	t.Parallel()
	requireTool(t, "conntrack", "conntrack")
	for _, tc := range []struct {
		name, interval string
	}{{"on", "1s"}, {"off", "0s"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := homeLab(t)
			lab.udpTimeouts("router", 3)
			startLabProxy(t, lab, natKeepalive(t, tc.interval))
			alice := newUDPPhone(t, lab, "home", labHome+":5060", labProxy+":5060", "alice", labDomain)
			bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
			alice.mustRegister()
			bob.mustRegister()
			b, a := connect(t, bob, alice)
			if tc.interval == "0s" {
				// Wait for the router to forget the mapping: conntrack shows it.
				deadline := time.Now().Add(30 * time.Second)
				for conntrackHas(t, lab, "router") {
					if time.Now().After(deadline) {
						t.Fatal("the router kept the phone's mapping for 30 s with udp timeouts of 3 s")
					}
					time.Sleep(100 * time.Millisecond)
				}
				go func() { _, _ = b.request("INVITE") }()
				if req, err := a.expect("INVITE"); err == nil {
					t.Fatalf("with no keepalives and the mapping gone, the re-INVITE still reached the phone:\n%s", req)
				}
				if n := alice.pings.Load(); n != 0 {
					t.Errorf("the phone got %d keepalives with keepalives off", n)
				}
				return
			}
			// Six pings a second apart span twice the router's timeout.
			deadline := time.Now().Add(30 * time.Second)
			for alice.pings.Load() < 6 {
				if time.Now().After(deadline) {
					t.Fatalf("the phone got %d keepalives in 30 s, at an interval of %s", alice.pings.Load(), tc.interval)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !conntrackHas(t, lab, "router") {
				t.Fatal("the router forgot the phone's mapping despite the keepalives")
			}
			if p, a := alice.pings.Load(), alice.answered.Load(); p != a {
				t.Errorf("the phone answered %d of %d keepalives", a, p)
			}
			talk(t, b, a, b)
		})
	}
}

// TestNATSippPhone: SIPp phones behind the home router, with the default
// config.toml. A phone registers its private Contact from port 5060 and
// then answers there, through the mapping its REGISTER opened: a caller on
// the public side reaches it, and the caller's ACK and BYE too; and a
// phone behind NAT that re-INVITEs and hangs up reaches its public caller.
func TestNATSippPhone(t *testing.T) {
	t.Parallel()
	lab := homeLab(t)
	startLabProxy(t, lab, defaultConfig(t, ""))
	proxyAddr := labProxy + ":5060"
	for _, tc := range []struct{ callee, caller string }{
		{"uas.xml", "uac.xml"},                    // the caller's ACK and BYE reach the phone
		{"uas_reinvite.xml", "uac_reinvited.xml"}, // the phone's re-INVITE and BYE reach the caller
	} {
		runSippUnder(t, lab.under("home"), proxyAddr, "-sf", scenario(t, "register.xml"), "-i", labHome, "-p", "5060",
			"-s", "alice", "-key", "contact_port", "5060").ExpectCalls(1)
		callee := runSippUnder(t, lab.under("home"), "-sf", scenario(t, tc.callee), "-i", labHome, "-p", "5060")
		waitListening(t, callee)
		runSippUnder(t, lab.under("public"), proxyAddr, "-sf", scenario(t, tc.caller), "-i", labPublic, "-p", "5070",
			"-s", "alice").ExpectCalls(1)
		callee.ExpectCalls(1)
	}
}

// TestNATVerdict: the NAT verdict is the rule field source.nated, and the
// trace says it with its reason. A stage marks the requests it finds
// behind NAT: the phone behind the router's INVITE carries the mark, the
// public phone's does not.
func TestNATVerdict(t *testing.T) {
	t.Parallel()
	lab := homeLab(t)
	config := defaultConfig(t, "")
	config = strings.Replace(config, `level  = "info"`, "level  = \"info\"\ntrace  = true", 1)
	mark := "[[stage]]\nuse        = \"rewrite\"\nwhen       = 'source.nated'\nset_header = { \"X-Nated\" = \"yes\" }\n\n# Relay, statefully."
	marked := strings.Replace(config, "# Relay, statefully.", mark, 1)
	if marked == config {
		t.Fatal("config.toml has no forward stage to put the marking stage before")
	}
	p := startLabProxy(t, lab, marked)
	alice := newUDPPhone(t, lab, "home", labHome+":5060", labProxy+":5060", "alice", labDomain)
	bob := newUDPPhone(t, lab, "public", labPublic+":5070", labProxy+":5060", "bob", labDomain)
	alice.mustRegister()
	bob.mustRegister()

	a, b := connect(t, alice, bob)
	hangUpCall(t, a, b)
	if got := headerValues(b.invite, "X-Nated"); len(got) != 1 || got[0] != "yes" {
		t.Errorf("the INVITE from behind NAT reached the public phone with X-Nated %q, want yes", got)
	}
	b2, a2 := connect(t, bob, alice)
	hangUpCall(t, b2, a2)
	if got := headerValues(a2.invite, "X-Nated"); len(got) != 0 {
		t.Errorf("the INVITE from the public phone carries X-Nated %q", got)
	}
	want := `msg="trace source" source=` + labRouterOut + `:5060 transport=UDP nated=true nat="Via ` + labHome + `:5060 is not the source ` + labRouterOut + `:5060"`
	if !p.logSays(want, 5*time.Second) {
		t.Errorf("the trace does not say %s\n%s", want, tail(p.log.String(), 3000))
	}
	if !p.logSays(`source=`+labPublic+`:5070 transport=UDP nated=false`, 5*time.Second) {
		t.Errorf("the trace does not say the public phone is not behind NAT")
	}
}
