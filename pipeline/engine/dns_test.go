package engine

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
	"github.com/switchboard-sip/switchboard/pipeline/resolve/resolvetest"
)

// The DNS tests name hosts under .test that only the test's own DNS
// server knows. They run in a network namespace of their own, with only
// loopback, so that no query can leave the machine whatever the code
// does.

// inNetns runs the calling test again in a network namespace of its own
// (unshare -n) with only loopback up, and returns false: the caller
// returns at once. In the namespace it returns true.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SWITCHBOARD_ENGINE_NETNS") == "1" {
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is not installed: this test needs it to run in a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is not installed: this test needs it to set up loopback in a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ENGINE_NETNS=1")
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

// dnsChain forwards every request, failing over after 300 ms.
const dnsChain = `
[[stage]]
use = "forward"
failover_timeout = "300ms"
`

// newDNSCore runs a core whose resolver asks only srv.
func newDNSCore(t *testing.T, server string) *core {
	t.Helper()
	return newCoreWith(t, dnsChain, Options{DNS: resolve.Config{Servers: []string{server}, Hosts: "-", Timeout: 200 * time.Millisecond}})
}

// TestDNSFailover sends requests to a domain whose SRV records name two
// phones, the first of which fails: the request reaches the second, in
// the same transaction, and the caller gets its answer.
func TestDNSFailover(t *testing.T) {
	if !inNetns(t) {
		return
	}
	tests := []struct {
		name   string
		method sip.RequestMethod
		first  script // nil answers nothing
	}{
		{"INVITE, no response", sip.INVITE, nil},
		{"INVITE, 503", sip.INVITE, answering(nil, 503)},
		{"MESSAGE, no response", sip.MESSAGE, nil},
		{"MESSAGE, 503", sip.MESSAGE, func(ph *phone, req *sip.Request, from *net.UDPAddr) { ph.reply(req, from, 503) }},
	}
	srv := resolvetest.Start(t)
	c := newDNSCore(t, srv.Addr)
	caller := newPhone(t, "caller", nil)
	for i, tc := range tests {
		first := newPhone(t, "first", tc.first)
		second := newPhone(t, "second", answering(nil, 200))
		domain := fmt.Sprintf("gw%d.test", i)
		srv.Set(t,
			fmt.Sprintf("_sip._udp.%s. 60 IN SRV 10 1 %d a.%s.", domain, port(t, first.addr()), domain),
			fmt.Sprintf("_sip._udp.%s. 60 IN SRV 20 1 %d b.%s.", domain, port(t, second.addr()), domain),
			fmt.Sprintf("a.%s. 60 IN A 127.0.0.1", domain),
			fmt.Sprintf("b.%s. 60 IN A 127.0.0.1", domain))
		id := fmt.Sprintf("dns-failover-%d", i)
		req := caller.build(tc.method, "sip:bob@"+domain, "sip:bob@"+domain, id, 1)
		caller.send(c.addr, req)
		res := caller.waitResponse(req, 200)
		if res.StatusCode != 200 {
			t.Errorf("test %d (%s): answer %d, want the second's 200", i, tc.name, res.StatusCode)
		}
		first.waitRequest(tc.method, id, 1)
		second.waitRequest(tc.method, id, 1)
	}
}

// TestDNSUnresolvable checks the answers to a request for a name that
// does not exist (478) and for one the DNS servers do not answer for (503,
// which goes upstream as 500, RFC 3261 16.7).
func TestDNSUnresolvable(t *testing.T) {
	if !inNetns(t) {
		return
	}
	srv := resolvetest.Start(t)
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0") // reads nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tests := []struct {
		server string
		code   int
	}{
		{srv.Addr, 478},
		{silent.LocalAddr().String(), 500},
	}
	for i, tc := range tests {
		c := newDNSCore(t, tc.server)
		caller := newPhone(t, "caller", nil)
		id := fmt.Sprintf("dns-unresolvable-%d", i)
		req := caller.build(sip.INVITE, "sip:bob@nowhere.test", "sip:bob@nowhere.test", id, 1)
		caller.send(c.addr, req)
		if res := caller.waitResponse(req, 200); res.StatusCode != tc.code {
			t.Errorf("test %d: answer %d, want %d", i, res.StatusCode, tc.code)
		}
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	ap, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port
}

// TestDNSTLSName sends a request to a sips domain whose first SRV target
// refuses connections and whose second is a TLS server with a certificate
// for the domain: the branch moves on at once, and the connection
// verifies the domain, not the SRV target's name, and sends it as SNI
// (RFC 5922 4.1).
func TestDNSTLSName(t *testing.T) {
	if !inNetns(t) {
		return
	}
	srv := resolvetest.Start(t)
	ca := certstest.NewCA(t)
	opts := tlsDialing(t, ca)
	opts.DNS = resolve.Config{Servers: []string{srv.Addr}, Hosts: "-"}
	e := forwardingEngineWith(t, opts, "", "")
	callee := newTLSCallee(t, ca, "secure.test")
	refused, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedPort := port(t, refused.Addr().String())
	refused.Close()
	srv.Set(t,
		fmt.Sprintf("_sips._tcp.secure.test. 60 IN SRV 10 1 %d gone.hosting.test.", refusedPort),
		fmt.Sprintf("_sips._tcp.secure.test. 60 IN SRV 20 1 %s tls.hosting.test.", callee.port),
		"gone.hosting.test. 60 IN A 127.0.0.1",
		"tls.hosting.test. 60 IN A 127.0.0.1")
	caller := newPeer(t, "127.0.0.2", nil)
	req := caller.request(sip.OPTIONS, "sips:bob@secure.test", "dns-tls", 1)
	caller.send(e.testAddr("UDP"), req)
	if res := caller.response(req, 200, coreWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("answer %v, want the TLS server's 200", res)
	}
	select {
	case sni := <-callee.sni:
		if sni != "secure.test" {
			t.Errorf("SNI %q, want the domain secure.test", sni)
		}
	default:
		t.Error("no handshake reached the TLS server")
	}
}
