package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/resolve/resolvetest"
)

// The DNS tests call users at domains under .test that only the test's
// own DNS server (in this process, on 127.0.0.1) knows: RFC 3263's NAPTR,
// SRV and A records. Each runs in a network namespace of its own with only
// loopback, so that no query can leave the machine.

// dnsInNetns runs the test again in a network namespace (see
// reexecInNetns) and returns false, or returns true inside it.
func dnsInNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SWITCHBOARD_DNS_NETNS") == "1" {
		return true
	}
	t.Parallel()
	requireE2E(t)
	reexecInNetns(t, t.Name(), "SWITCHBOARD_DNS_NETNS", nil)
	return false
}

// dnsConfig is a proxy whose resolver asks server, and that forwards
// every request, failing over to the next address after 1 s without an
// answer.
func dnsConfig(server string) string {
	return fmt.Sprintf(`[server]
domains = [%q]
drain_timeout = "5s"

[log]
level = "debug"

[dns]
servers = [%q]
timeout = "500ms"

[[stage]]
use = "parse"
[[stage]]
use = "record_route"
[[stage]]
use = "forward"
failover_timeout = "1s"
`, proxyDomain, server)
}

// TestDNSFailoverToSecondSRV calls a domain whose first SRV target has
// nothing listening and whose second is a phone: the call reaches the
// second (RFC 3263 4.3), through the NAPTR record that names the SRV
// records.
func TestDNSFailoverToSecondSRV(t *testing.T) {
	if !dnsInNetns(t) {
		return
	}
	dns := resolvetest.Start(t)
	p := startProxy(t, dnsConfig(dns.Addr))
	callee := startPhone(t, "uas.xml", calleeIP, "udp")
	dead := freePort(t, "udp", "127.0.0.4")
	dns.Set(t,
		`gw.test. 60 IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.gw.test.`,
		fmt.Sprintf("_sip._udp.gw.test. 60 IN SRV 10 1 %d down.gw.test.", dead),
		fmt.Sprintf("_sip._udp.gw.test. 60 IN SRV 20 1 %d up.gw.test.", callee.Port),
		"down.gw.test. 60 IN A 127.0.0.4",
		"up.gw.test. 60 IN A "+calleeIP)

	callFrom(t, p, "uac_domain.xml", "udp", "-s", "bob", "-key", "domain", "gw.test").ExpectCalls(1)
	callee.ExpectCalls(1)
	if !p.logSays("next hop failed: trying the next", 5*time.Second) {
		t.Errorf("the proxy's log does not say it failed over:\n%s", tail(p.log.String(), 40))
	}
}

// TestDNSUnresolvableDomain calls a domain that does not exist: 478, and a
// log line that names the stage.
func TestDNSUnresolvableDomain(t *testing.T) {
	if !dnsInNetns(t) {
		return
	}
	dns := resolvetest.Start(t)
	p := startProxy(t, dnsConfig(dns.Addr))
	callFrom(t, p, "uac_unresolvable.xml", "udp", "-s", "bob", "-key", "domain", "nowhere.test").ExpectCalls(1)
	if !p.logSays(`msg="next hop not resolved" stage=forward`, 5*time.Second) {
		t.Errorf("the proxy's log does not say the next hop did not resolve:\n%s", tail(p.log.String(), 40))
	}
}

// TestDNSRecordChangeAfterTTL calls a domain whose A record changes: calls
// go to the old address while the answer is cached (its TTL, 5 s), and to
// the new one after it expired.
func TestDNSRecordChangeAfterTTL(t *testing.T) {
	if !dnsInNetns(t) {
		return
	}
	dns := resolvetest.Start(t)
	p := startProxy(t, dnsConfig(dns.Addr))
	// Both phones on one port, on two addresses: the record decides. The
	// domain is called with that port, so it is resolved by its A record
	// alone (RFC 3263 4.2).
	old := startPhone(t, "uas.xml", calleeIP, "udp", "-m", "100")
	next := startPhone(t, "uas.xml", callee2IP, "udp", "-p", strconv.Itoa(old.Port))
	dns.Set(t, "pbx.test. 5 IN A "+calleeIP)
	domain := fmt.Sprintf("pbx.test:%d", old.Port)
	call := func() {
		t.Helper()
		callFrom(t, p, "uac_domain.xml", "udp", "-s", "bob", "-key", "domain", domain).ExpectCalls(1)
	}
	call()
	dns.Set(t, "pbx.test. 60 IN A "+callee2IP)
	call() // cached: still the old address
	if n := len(old.Received("INVITE")); n != 2 {
		t.Errorf("the old address got %d INVITEs, want 2 (the second while the record was cached)", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(next.Received("INVITE")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no call reached the new address of pbx.test 30 s after its record changed:\n%s", tail(p.log.String(), 40))
		}
		time.Sleep(500 * time.Millisecond) // the poll's interval: one call each
		call()
	}
	next.ExpectCalls(1)
}

// TestDNSWeights calls a domain whose two SRV records share a priority,
// with weights 1 and 3, a thousand times: the first INVITE of about a
// quarter of the calls goes to the first target (RFC 2782).
func TestDNSWeights(t *testing.T) {
	if !dnsInNetns(t) {
		return
	}
	const calls = 1000
	dns := resolvetest.Start(t)
	p := startProxy(t, dnsConfig(dns.Addr))
	light := startPhone(t, "uas.xml", calleeIP, "udp", "-m", strconv.Itoa(calls))
	heavy := startPhone(t, "uas.xml", callee2IP, "udp", "-m", strconv.Itoa(calls))
	dns.Set(t,
		fmt.Sprintf("_sip._udp.weights.test. 60 IN SRV 10 1 %d light.weights.test.", light.Port),
		fmt.Sprintf("_sip._udp.weights.test. 60 IN SRV 10 3 %d heavy.weights.test.", heavy.Port),
		"light.weights.test. 60 IN A "+calleeIP,
		"heavy.weights.test. 60 IN A "+callee2IP)

	callFrom(t, p, "uac_domain.xml", "udp", "-s", "bob", "-key", "domain", "weights.test",
		"-m", strconv.Itoa(calls), "-r", "100", "-timeout", "60s").ExpectCalls(calls)
	light.Stop()
	heavy.Stop()
	l, h := len(light.Received("INVITE")), len(heavy.Received("INVITE"))
	if l+h != calls {
		t.Fatalf("the targets got %d and %d INVITEs, want %d in all", l, h, calls)
	}
	t.Logf("weight 1: %d calls, weight 3: %d calls", l, h)
	// Three and a half standard deviations of a binomial count.
	if share := float64(l) / calls; share < 0.20 || share > 0.30 {
		t.Errorf("the target of weight 1 got %d of %d calls (%.3f), want a quarter ± 0.05", l, calls, share)
	}
}
