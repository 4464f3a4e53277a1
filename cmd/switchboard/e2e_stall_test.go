package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const (
	// stallDeadline is how soon every OPTIONS of the other source must be
	// answered while one source attacks.
	stallDeadline = 500 * time.Millisecond
	// stallProbes is how many OPTIONS the other source sends, one every
	// stallProbeEvery, while the attack goes on.
	stallProbes     = 12
	stallProbeEvery = 300 * time.Millisecond
)

// stallRequest returns an OPTIONS from local to the user bob, whose
// header fields after the top Via are extra, and with suffixes added to
// the Request-URI, Via, From and To (by those names).
func stallRequest(local string, suffix map[string]string, extra string) string {
	return strings.Join([]string{
		"OPTIONS sip:bob@" + proxyDomain + suffix["Request-URI"] + " SIP/2.0",
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-stall-" + secRandom() + ";rport" + suffix["Via"] + extra,
		"Max-Forwards: 70",
		"From: <sip:mallory@attacker.test>;tag=" + secRandom() + suffix["From"],
		"To: <sip:bob@" + proxyDomain + ">" + suffix["To"],
		"Call-ID: stall-" + secRandom(),
		"CSeq: 1 OPTIONS",
		"Content-Length: 0", "", "",
	}, "\r\n")
}

// stallParams returns n parameters ";p0;p1;...", each a name of its own.
func stallParams(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(";p" + strconv.Itoa(i))
	}
	return b.String()
}

// stallAttack has a source on callerIP send the datagrams attack makes
// for its local address (at most count of them, one every every) to the
// proxy p, while a source on calleeIP sends stallProbes OPTIONS to the
// proxy itself. It returns the numbers of the OPTIONS that were not
// answered within stallDeadline, and the status lines the attacker got.
func stallAttack(t *testing.T, p *proxy, every time.Duration, count int, attack func(i int, local string) string) (late []int, answers []string) {
	t.Helper()
	attacker := secNewUA(t, callerIP, p.UDP)
	probe := secNewUA(t, calleeIP, p.UDP)
	options := func() (time.Duration, bool) {
		callID := "probe-" + secRandom()
		req := probe.build(secReq{Method: "OPTIONS", URI: "sip:" + p.UDP, From: "monitor@monitor.test", To: p.UDP}, callID, secRandom(), 1, "z9hG4bK-probe-"+secRandom(), "")
		start := time.Now()
		if _, err := probe.pc.WriteTo([]byte(req), probe.proxy); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		for {
			_ = probe.pc.SetReadDeadline(start.Add(stallDeadline))
			n, _, err := probe.pc.ReadFrom(buf)
			if err != nil {
				return time.Since(start), false
			}
			if msg, err := sip.ParseMessage(slices.Clone(buf[:n])); err == nil {
				if res, ok := msg.(*sip.Response); ok && res.CallID() != nil && res.CallID().Value() == callID && res.StatusCode == 200 {
					return time.Since(start), true
				}
			}
		}
	}
	if _, ok := options(); !ok {
		t.Fatalf("the proxy does not answer an OPTIONS within %v before the attack", stallDeadline)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := range count {
			if _, err := attacker.pc.WriteTo([]byte(attack(i, attacker.local)), attacker.proxy); err != nil {
				t.Errorf("attack: %v", err)
				return
			}
			mu.Lock()
			sent++
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			_ = attacker.pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, _, err := attacker.pc.ReadFrom(buf); err == nil {
				line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
				mu.Lock()
				answers = append(answers, line)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()

	probes := time.NewTicker(stallProbeEvery)
	for i := range stallProbes {
		<-probes.C
		took, ok := options()
		t.Logf("OPTIONS %d: answered %v, after %v", i+1, ok, took.Round(time.Millisecond))
		if !ok {
			late = append(late, i+1)
		}
	}
	probes.Stop()
	close(stop)
	wg.Wait()
	t.Logf("the attacker sent %d datagrams and got %d answers", sent, len(answers))
	return late, answers
}

// TestSecurityOneSourceStallsUDP: one source sends ten datagrams a second,
// under examples/secure.toml's rate limit (600 a minute), each with 8000
// parameters in its Via, To, From or Request-URI in turn. Each used to
// cost sipgo's parser 0.1 to 0.5 s (the cost grew with the square of the
// count), on the goroutine that reads the UDP socket for every source, and
// another source's OPTIONS went unanswered. Now a value with more than 100
// parameters is refused at the hundred and first: the attacker gets 400
// with a reason naming where they are, and every OPTIONS of the other
// source is answered within 0.5 s. Not parallel: it measures how soon the
// proxy answers, which other tests' load would change.
func TestSecurityOneSourceStallsUDP(t *testing.T) {
	p := secStartProxy(t, false)
	wheres := []string{"Via", "To", "From", "Request-URI"}
	params := stallParams(8000)
	late, answers := stallAttack(t, p, 100*time.Millisecond, 600, func(i int, local string) string {
		return stallRequest(local, map[string]string{wheres[i%len(wheres)]: params}, "")
	})
	if len(late) > 0 {
		t.Errorf("OPTIONS %v of %d not answered within %v while one source sent 8000 parameters ten times a second", late, stallProbes, stallDeadline)
	}
	for _, where := range wheres {
		in := where
		if where == "Request-URI" {
			in = "the " + where
		}
		want := "SIP/2.0 400 Bad Request: too many parameters in " + in
		if !slices.Contains(answers, want) {
			t.Errorf("the attacker never got %q; it got %q", want, slices.Compact(slices.Sorted(slices.Values(answers))))
		}
	}
}

// TestSecurityOneSourceHoldsUDPReader: one source sends datagrams of 52 KB,
// each a list of 4000 Routes (the dearest to parse per byte, about 0.7 µs a
// Route), 80 a second, under examples/secure.toml's rate limit (600 a
// minute, in a window that may open with a burst). The socket's reader fell
// behind and another source's OPTIONS went unanswered. Now, while the
// reader is saturated, a source past half of it has its excess dropped
// unparsed, and every OPTIONS of the other source is answered within
// 0.5 s. Whether the attacker is held back depends on how fast this
// machine parses (TestReaderShare tests that); what the other source sees
// does not. Not parallel, as the test above: it measures how soon the proxy
// answers, which other tests' load would change.
func TestSecurityOneSourceHoldsUDPReader(t *testing.T) {
	httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	p := startProxy(t, secConfig(t, false)+fmt.Sprintf("\n[http]\nlisten = %q\n", httpAddr))
	routes := "\r\nRoute: " + strings.Repeat("<sip:a@h;lr>,", 4000) + "<sip:a@h;lr>"
	late, _ := stallAttack(t, p, 12*time.Millisecond, 500, func(_ int, local string) string {
		return stallRequest(local, nil, routes)
	})
	if len(late) > 0 {
		t.Errorf("OPTIONS %v of %d not answered within %v while one source sent 80 lists of 4000 Routes a second", late, stallProbes, stallDeadline)
	}
	// The log names a source held back once; the counter counts every
	// datagram dropped.
	logged := p.logSays("udp source held back", 0)
	dropped := secGauge(t, "http://"+httpAddr, "switchboard_udp_held_back_total")
	if dropped == "" || logged != (dropped != "0") {
		t.Errorf("the log says the attacker was held back: %v; switchboard_udp_held_back_total is %q", logged, dropped)
	}
	t.Logf("the attacker was held back: %v (%s datagrams dropped)", logged, dropped)
}
