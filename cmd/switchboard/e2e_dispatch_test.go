package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/destinations"
)

// The destination-set tests run SIPp gateways on loopback behind the set
// "gw" and call the number 0123 through the proxy. Gateways answer the
// health checks (uas_gateway.xml).

const adminToken = "dispatch-test-token-4f9c2a"

// gatewayRun is a SIPp gateway, the URI the set names it by, and more
// keys of its [[set.destination]] ("weight = 3").
type gatewayRun struct {
	*sippRun
	uri  string
	keys string
}

// startGateway runs scenario as a gateway on ip, on port (0: a free one).
func startGateway(t *testing.T, scenarioName, ip string, port int, extra ...string) *gatewayRun {
	t.Helper()
	args := []string{"-m", "1000000", "-timeout", "120s"}
	if port != 0 {
		args = append(args, "-p", strconv.Itoa(port))
	}
	r := startPhone(t, scenarioName, ip, "udp", append(args, extra...)...)
	return &gatewayRun{sippRun: r, uri: "sip:" + r.Addr()}
}

// dispatchProxy runs the proxy with set (a [[set]] table named "gw", its
// destinations appended) in front of the phones, and its admin API.
func dispatchProxy(t *testing.T, set string, gws ...*gatewayRun) (*proxy, string) {
	t.Helper()
	httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\ndomains = [%q]\ndrain_timeout = \"5s\"\n\n[log]\nlevel = \"info\"\n\n[http]\nlisten = %q\ntoken = %q\n\n", proxyDomain, httpAddr, adminToken)
	b.WriteString("[[set]]\nname = \"gw\"\n" + strings.TrimSpace(set) + "\n")
	for _, gw := range gws {
		fmt.Fprintf(&b, "[[set.destination]]\nuri = %q\n%s\n", gw.uri, gw.keys)
	}
	b.WriteString(`
[[stage]]
use = "parse"
[[stage]]
use  = "dispatch"
set  = "gw"
when = '!in_dialog'
[[stage]]
use  = "location"
when = 'in_dialog'
[[stage]]
use = "record_route"
[[stage]]
use = "forward"
`)
	return startProxy(t, b.String()), "http://" + httpAddr
}

// admin calls the admin API and decodes its answer into out.
func admin(t *testing.T, method, url string, body any, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s", method, url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
}

// destination returns the admin API's state of the gateway.
func destination(t *testing.T, api string, gw *gatewayRun) destinations.State {
	t.Helper()
	var all []destinations.State
	admin(t, "GET", api+"/admin/destinations", nil, &all)
	for _, d := range all {
		if d.URI == gw.uri {
			return d
		}
	}
	t.Fatalf("the admin API does not show %s: %+v", gw.uri, all)
	return destinations.State{}
}

// invites counts the INVITEs a gateway got, after stopping it.
func invites(gw *gatewayRun) int {
	gw.Stop()
	return len(gw.Received("INVITE "))
}

// TestDispatchWeights sends 2000 calls to two gateways weighted 1 and 3:
// they get a quarter and three quarters of them, within 3 %.
func TestDispatchWeights(t *testing.T) {
	requireE2E(t)
	a := startGateway(t, "uas_gateway.xml", calleeIP, 0)
	b := startGateway(t, "uas_gateway.xml", callee2IP, 0)
	a.keys, b.keys = "weight = 1", "weight = 3"
	p, _ := dispatchProxy(t, "algorithm = \"weighted\"\n[set.check]\ninterval = \"0s\"", a, b)
	// Every call dials the same number: at most 90 at once stay under
	// server.max_invites_per_callee (100), past which the proxy answers
	// 486 when the gateways fall behind.
	const calls = 2000
	callFrom(t, p, "uac.xml", "udp", "-s", "0123", "-m", strconv.Itoa(calls), "-r", "400", "-l", "90", "-timeout", "90s").ExpectCalls(calls)
	na, nb := invites(a), invites(b)
	if na+nb != calls || abs(na-calls/4) > calls*3/100 {
		t.Errorf("gateway a (weight 1) got %d calls and b (weight 3) %d, want about %d and %d", na, nb, calls/4, calls*3/4)
	}
}

// failedCalls returns the Call-IDs of the calls SIPp's error log gave up.
func failedCalls(t *testing.T, r *sippRun) []string {
	t.Helper()
	data, err := os.ReadFile(r.file("errors.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range abortedCall.FindAllStringSubmatch(string(data), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

var abortedCall = regexp.MustCompile(`Aborting call on [^\n]*?Call-I[Dd] '([^']+)'`)

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestDispatchGatewayKilled kills one of two gateways in the middle of a
// run of calls: the calls go on through the other (failover, then the
// health checks), the killed one is marked down within interval x
// down_after (plus the check's timeout), and once it runs again it is
// marked up after up_after answered checks and takes calls again.
func TestDispatchGatewayKilled(t *testing.T) {
	requireE2E(t)
	const (
		interval  = 300 * time.Millisecond
		timeout   = 200 * time.Millisecond
		downAfter = 2
		upAfter   = 2
	)
	a := startGateway(t, "uas_gateway.xml", calleeIP, 0)
	b := startGateway(t, "uas_gateway.xml", callee2IP, 0)
	p, api := dispatchProxy(t, fmt.Sprintf(`algorithm = "round_robin"
failover_timeout = "500ms"
[set.check]
interval = "%s"
timeout = "%s"
down_after = %d
up_after = %d`, interval, timeout, downAfter, upAfter), a, b)
	poll := func(what string, within time.Duration, cond func(destinations.State) bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond(destination(t, api, a)) {
			if time.Since(start) > within {
				t.Fatalf("%s: not within %s: %+v", what, within, destination(t, api, a))
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	poll("both gateways checked", 5*time.Second, func(s destinations.State) bool {
		return s.Alive && len(s.Addresses) == 1 && s.Addresses[0].LastCode == 200
	})

	const calls = 600
	run := callFrom(t, p, "uac.xml", "udp", "-s", "0123", "-m", strconv.Itoa(calls), "-r", "100", "-l", "50", "-timeout", "90s", "-max_retrans", "4")
	time.Sleep(2 * time.Second) // the kill comes a third into the run
	_ = a.cmd.Process.Kill()
	a.Wait()
	down := poll("the killed gateway down", interval*downAfter+timeout*downAfter+time.Second, func(s destinations.State) bool { return !s.Alive })
	t.Logf("the killed gateway was marked down %s after the kill", down)
	run.Wait()
	stats, err := run.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// A call that the killed gateway answered just before the kill loses
	// its BYE. Every failed call must be one of those: its INVITE reached
	// the gateway before the kill; a call set up after it never fails.
	before := map[string]bool{}
	for _, m := range a.Received("INVITE ") {
		before[m.Header("Call-ID")] = true
	}
	failed := failedCalls(t, run)
	for _, id := range failed {
		if !before[id] {
			t.Errorf("call %s failed, and the killed gateway never had it\n%s", id, run.Report())
		}
	}
	if stats.Successful+stats.Failed != calls || stats.Failed != len(failed) || stats.Failed > calls/10 {
		t.Errorf("%d successful and %d failed calls (%d in the error log) of %d\n%s", stats.Successful, stats.Failed, len(failed), calls, run.Report())
	}
	t.Logf("%d calls answered by the gateway before its kill lost their BYE", len(failed))

	port := a.Port
	a = startGateway(t, "uas_gateway.xml", calleeIP, port)
	up := poll("the gateway back up", interval*upAfter+time.Second, func(s destinations.State) bool { return s.Alive })
	t.Logf("the gateway was marked up %s after its restart", up)
	callFrom(t, p, "uac.xml", "udp", "-s", "0123", "-m", "10", "-r", "50").ExpectCalls(10)
	if n := invites(a); n == 0 {
		t.Error("the gateway back up got no call")
	}
}

// TestDispatchDrain drains a gateway through the admin API: new calls go
// to the other one only, until it is undrained.
func TestDispatchDrain(t *testing.T) {
	requireE2E(t)
	a := startGateway(t, "uas_gateway.xml", calleeIP, 0)
	b := startGateway(t, "uas_gateway.xml", callee2IP, 0)
	p, api := dispatchProxy(t, "algorithm = \"round_robin\"\n[set.check]\ninterval = \"1s\"", a, b)

	var changed []destinations.State
	admin(t, "POST", api+"/admin/destinations/drain", map[string]string{"uri": a.uri}, &changed)
	if len(changed) != 1 || !changed[0].Drained || changed[0].Alive {
		t.Fatalf("drain answered %+v, want the gateway drained", changed)
	}
	callFrom(t, p, "uac.xml", "udp", "-s", "0123", "-m", "40", "-r", "100").ExpectCalls(40)
	if n := len(a.Received("INVITE ")); n != 0 {
		t.Errorf("the drained gateway got %d calls", n)
	}
	// Undrained with switchboard ctl: the same operation over the control socket.
	if code, out, errOut := ctlRun(t, p.ConfigPath, "undrain", a.uri, "gw"); code != 0 || !strings.Contains(out, a.uri) {
		t.Fatalf("ctl undrain: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := ctlRun(t, p.ConfigPath, "destinations"); code != 0 || !strings.Contains(out, a.uri) || strings.Contains(out, "drained") {
		t.Errorf("ctl destinations after undrain: exit %d\n%s", code, out)
	}
	if s := destination(t, api, a); s.Drained || !s.Alive {
		t.Fatalf("after undrain: %+v", s)
	}
	callFrom(t, p, "uac.xml", "udp", "-s", "0123", "-m", "40", "-r", "100").ExpectCalls(40)
	if na, nb := invites(a), invites(b); na != 20 || nb != 60 {
		t.Errorf("after undrain the gateways got %d and %d calls in all, want 20 and 60", na, nb)
	}
}

// TestDispatchRetryAfter has the first gateway answer 503 with
// Retry-After: the call fails over to the second, and the first gets no
// call for the time it asked for.
func TestDispatchRetryAfter(t *testing.T) {
	requireE2E(t)
	a := startGateway(t, "uas_unavailable.xml", calleeIP, 0, "-key", "retry_after", "120")
	b := startGateway(t, "uas_gateway.xml", callee2IP, 0)
	a.keys, b.keys = "priority = 1", "priority = 2"
	p, api := dispatchProxy(t, "algorithm = \"priority\"\n[set.check]\ninterval = \"0s\"", a, b)
	callFrom(t, p, "uac.xml", "udp", "-s", "0123", "-m", "20", "-r", "20").ExpectCalls(20)
	s := destination(t, api, a)
	if len(s.Addresses) != 1 || s.Addresses[0].Until.Before(time.Now().Add(100*time.Second)) || s.Alive {
		t.Errorf("the gateway that asked for 120 s out shows %+v", s)
	}
	if na, nb := invites(a), invites(b); na != 1 || nb != 20 {
		t.Errorf("the gateways got %d and %d calls, want 1 (then 503 Retry-After: 120) and 20", na, nb)
	}
}

// TestDispatchReloadKeepsHealth: a reload that keeps a destination keeps
// what the proxy knows of it (down after its checks failed, drained by an
// operator), and one that removes it drops it from the admin API; the
// destinations' metrics say the same on /metrics.
func TestDispatchReloadKeepsHealth(t *testing.T) {
	requireE2E(t)
	a := startGateway(t, "uas_gateway.xml", calleeIP, 0)
	// Nothing answers at b: its checks fail.
	b := &gatewayRun{uri: fmt.Sprintf("sip:%s:%d", callee2IP, freePort(t, "udp", callee2IP))}
	p, api := dispatchProxy(t, "algorithm = \"round_robin\"\n[set.check]\ninterval = \"300ms\"\ntimeout = \"200ms\"\ndown_after = 2\nup_after = 2", a, b)
	deadline := time.Now().Add(10 * time.Second)
	for s := destination(t, api, b); s.Alive || len(s.Addresses) == 0 || s.Addresses[0].Failures < 2; s = destination(t, api, b) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway nobody answers at is not down after 10 s: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var changed []destinations.State
	admin(t, "POST", api+"/admin/destinations/drain", map[string]string{"uri": a.uri}, &changed)

	reload := func(config string) {
		t.Helper()
		if err := os.WriteFile(p.ConfigPath, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := ctlRun(t, p.ConfigPath, "reload"); code != 0 {
			t.Fatalf("ctl reload: exit %d\n%s%s", code, out, errOut)
		}
	}
	cfg, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// A reload that keeps both (only the set's algorithm changes).
	reload(strings.Replace(string(cfg), `algorithm = "round_robin"`, `algorithm = "priority"`, 1))
	if s := destination(t, api, b); s.Alive || s.Addresses[0].Up {
		t.Errorf("after a reload that keeps it, the gateway that was down is up: %+v", s)
	}
	if s := destination(t, api, a); !s.Drained {
		t.Errorf("after a reload that keeps it, the drained gateway is not drained: %+v", s)
	}

	res, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`switchboard_destination_up{address="%s:%s",set="gw",uri="%s"} 0`, callee2IP, strings.TrimPrefix(b.uri[strings.LastIndex(b.uri, ":"):], ":"), b.uri),
		fmt.Sprintf(`switchboard_destination_drained{set="gw",uri="%s"} 1`, a.uri),
		fmt.Sprintf(`switchboard_destination_requests_in_progress{set="gw",uri="%s"} 0`, a.uri),
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A reload that removes b.
	reload(strings.Replace(string(cfg), fmt.Sprintf("[[set.destination]]\nuri = %q\n", b.uri), "", 1))
	var all []destinations.State
	admin(t, "GET", api+"/admin/destinations", nil, &all)
	for _, d := range all {
		if d.URI == b.uri {
			t.Errorf("after a reload that removed it, the admin API still shows %s", b.uri)
		}
	}
	if len(all) != 1 || all[0].URI != a.uri {
		t.Errorf("after the reload the admin API shows %+v, want %s only", all, a.uri)
	}
}
