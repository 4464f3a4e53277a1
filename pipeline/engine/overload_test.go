package engine

import (
	"bytes"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestOverload plays waits into the watch, interval by interval, and
// checks when new calls are shed: only once every message of overloadAbove
// intervals in a row waited longer than the target, counting both queues,
// and until an interval in which one did not.
func TestOverload(t *testing.T) {
	const target = 200 * time.Millisecond
	type wait struct {
		socket bool // else a wait for a worker
		d      time.Duration
	}
	many := func(socket bool, d time.Duration) []wait {
		out := make([]wait, overloadSamples)
		for i := range out {
			out[i] = wait{socket, d}
		}
		return out
	}
	// standing is overloadAbove intervals of the waits, as many ends.
	standing := func(waits []wait) [][]wait {
		out := make([][]wait, overloadAbove)
		for i := range out {
			out[i] = waits
		}
		return out
	}
	shedAtLast := func(last bool) []bool {
		out := make([]bool, overloadAbove)
		out[overloadAbove-1] = last
		return out
	}
	tests := []struct {
		name      string
		target    time.Duration
		intervals [][]wait // each played within one interval; the next one's first wait ends it
		gap       time.Duration
		want      []bool // shedding after each interval ended
		standing  time.Duration
	}{
		{"a burst drains", target, standing(append(many(true, 400*time.Millisecond), wait{true, 0})), 0, shedAtLast(false), 0},
		{"a standing queue in the socket", target, standing(many(true, 300*time.Millisecond)), 0, shedAtLast(true), 300 * time.Millisecond},
		{"a standing queue for the workers", target, standing(many(false, 250*time.Millisecond)), 0, shedAtLast(true), 250 * time.Millisecond},
		{"both queues add up", target, standing(append(many(true, 150*time.Millisecond), many(false, 100*time.Millisecond)...)), 0, shedAtLast(true), 250 * time.Millisecond},
		{"each queue below the target, their sum too", target, standing(append(many(true, 90*time.Millisecond), many(false, 100*time.Millisecond)...)), 0, shedAtLast(false), 190 * time.Millisecond},
		{"a stall shorter than T1 drains by itself", target,
			append(standing(many(true, 300*time.Millisecond))[1:], many(true, 10*time.Millisecond), many(true, 300*time.Millisecond)),
			0, make([]bool, overloadAbove+1), 300 * time.Millisecond},
		{"the queue drains: shedding stops", target,
			append(standing(many(true, 300*time.Millisecond)), many(true, 10*time.Millisecond)),
			0, append(shedAtLast(true), false), 10 * time.Millisecond},
		{"within an overload one interval above sheds again", target,
			append(standing(many(true, 300*time.Millisecond)), many(true, 10*time.Millisecond), many(true, 300*time.Millisecond)),
			0, append(shedAtLast(true), false, true), 300 * time.Millisecond},
		{"shedding goes on while the queue stands", target,
			append(standing(many(true, 300*time.Millisecond)), many(true, 300*time.Millisecond)),
			0, append(shedAtLast(true), true), 300 * time.Millisecond},
		{"a few messages that waited are a stall", target, standing(many(true, 300*time.Millisecond)[:overloadSamples-1]), 0, shedAtLast(false), 300 * time.Millisecond},
		{"an interval that outlived its waits", target, standing(many(true, 300*time.Millisecond)), 2 * overloadInterval, shedAtLast(false), 300 * time.Millisecond},
		{"0s never sheds", 0, standing(many(true, time.Second)), 0, shedAtLast(false), time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOverload(func() time.Duration { return tc.target }, slog.New(slog.NewTextHandler(io.Discard, nil)))
			queued := o.queuedIn()
			play := func(w wait, now time.Time) {
				if w.socket {
					queued(w.d, now)
				} else {
					o.scheduled(w.d, now)
				}
			}
			// The first wait of an interval ends the one before; after
			// the last, a wait of none ends it.
			now := time.Unix(1000, 0)
			var standing time.Duration
			for i := 0; i <= len(tc.intervals); i++ {
				waits := []wait{{true, 0}}
				if i < len(tc.intervals) {
					waits = tc.intervals[i]
				}
				if i > 0 {
					if i == len(tc.intervals) {
						now = now.Add(tc.gap)
					}
					now = now.Add(overloadInterval)
				}
				play(waits[0], now)
				if i > 0 {
					standing = o.delay()
					if got := o.refusing(); got != tc.want[i-1] {
						t.Errorf("after interval %d, shedding = %v, want %v", i-1, got, tc.want[i-1])
					}
				}
				for _, w := range waits[1:] {
					play(w, now)
				}
			}
			if standing != tc.standing {
				t.Errorf("standing delay %s, want %s", standing, tc.standing)
			}
		})
	}
}

// TestCoreOverloadSheds puts the proxy in overload: a new INVITE gets 503
// (without Retry-After) and never reaches the callee, while the call
// already up goes on (a re-INVITE, its BYE), an OPTIONS is answered and an
// emergency call is not refused; once the queue drained, new calls go
// through again.
func TestCoreOverloadSheds(t *testing.T) {
	c := newCore(t, productChain)
	callee := newPhone(t, "bob", answering(nil, 200))
	c.register(callee, "bob")
	caller := newPhone(t, "alice", nil)
	ok, _ := c.call(t, caller, callee, "bob", "overload-up")

	// A socket of the test's own, its waits played an hour ahead: the
	// proxy's own waits, taken now, fall before the interval they would
	// end, and the socket's own cannot hide this one's queue.
	o := c.e.overload
	queued := o.queuedIn()
	ahead := time.Now().Add(time.Hour)
	for i := range overloadAbove {
		for range overloadSamples {
			queued(300*time.Millisecond, ahead.Add(time.Duration(i)*overloadInterval))
		}
	}
	ahead = ahead.Add(overloadAbove * overloadInterval)
	queued(300*time.Millisecond, ahead)
	if !c.e.Overloaded() || c.e.QueueDelay() != 300*time.Millisecond {
		t.Fatalf("overloaded %v with a standing delay of %s, want true and 300ms", c.e.Overloaded(), c.e.QueueDelay())
	}

	shed := caller.call(c, "bob", "overload-shed")
	res := caller.waitResponse(shed, 300)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") != nil {
		t.Fatalf("a new call in overload was answered %d %s (Retry-After %v), want 503 without Retry-After", res.StatusCode, res.Reason, res.GetHeader("Retry-After"))
	}
	caller.send(c.addr, ackOf(shed, res))
	if n := c.e.OverloadRefused(); n != 1 {
		t.Errorf("OverloadRefused() = %d, want 1", n)
	}
	for i, uri := range []string{"urn:service:sos", "sip:112@example.org;user=phone"} {
		sos := caller.build(sip.INVITE, uri, uri, "overload-sos-"+strconv.Itoa(i), 1)
		caller.send(c.addr, sos)
		if res := caller.waitResponse(sos, 300); res.StatusCode == 503 {
			t.Errorf("an emergency call to %s in overload was answered %d %s, want it not refused", uri, res.StatusCode, res.Reason)
		} else {
			caller.send(c.addr, ackOf(sos, res))
		}
	}
	if n := c.e.OverloadRefused(); n != 1 {
		t.Errorf("OverloadRefused() = %d after the emergency calls, want 1: they were not refused", n)
	}
	reinvite := caller.inDialog(sip.INVITE, ok, 2)
	caller.send(c.addr, reinvite)
	if res := caller.waitResponse(reinvite, 200); res.StatusCode != 200 {
		t.Errorf("a re-INVITE of the call up was answered %d, want 200", res.StatusCode)
	}
	caller.send(c.addr, caller.inDialog(sip.ACK, ok, 2))
	bye := caller.inDialog(sip.BYE, ok, 3)
	caller.send(c.addr, bye)
	if res := caller.waitResponse(bye, 200); res.StatusCode != 200 {
		t.Errorf("the BYE of the call up was answered %d, want 200", res.StatusCode)
	}
	options := caller.build(sip.OPTIONS, c.uri(""), c.uri(""), "overload-options", 1)
	caller.send(c.addr, options)
	if res := caller.waitResponse(options, 200); res.StatusCode != 200 {
		t.Errorf("an OPTIONS in overload was answered %d, want 200", res.StatusCode)
	}
	callee.sync()
	if n := len(callee.find(requestsOf(sip.INVITE, "overload-shed"))); n != 0 {
		t.Errorf("the callee got the shed INVITE:\n%s", callee.dump())
	}
	if n := len(callee.find(requestsOf(sip.ACK, "overload-shed"))); n != 0 {
		t.Errorf("the ACK of the 503 was relayed:\n%s", callee.dump())
	}

	for range overloadSamples {
		queued(0, ahead)
	}
	queued(0, ahead.Add(overloadInterval))
	if c.e.Overloaded() {
		t.Fatal("still overloaded after an interval without a queue")
	}
	again := caller.call(c, "bob", "overload-after")
	if res := caller.waitResponse(again, 200); res.StatusCode != 200 {
		t.Errorf("a new call after the overload was answered %d, want 200", res.StatusCode)
	}
}

// TestOverloadSockets: each socket has its own queue; a quiet one does not
// hide a busy one's.
func TestOverloadSockets(t *testing.T) {
	o := newOverload(func() time.Duration { return 200 * time.Millisecond }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	busy, quiet := o.queuedIn(), o.queuedIn()
	now := time.Unix(1000, 0)
	for range overloadAbove + 1 {
		for range overloadSamples {
			busy(300*time.Millisecond, now)
		}
		quiet(0, now)
		now = now.Add(overloadInterval)
	}
	if !o.refusing() || o.delay() != 300*time.Millisecond {
		t.Errorf("shedding %v at a standing delay of %s, want true at 300ms", o.shedding.Load(), o.delay())
	}
}

// TestOverloadEnds checks how an overload ends: when the target is turned
// off by a reload, at the next interval; when the messages stop, at the
// gauges' next look (settle), with the log's "overload over" a calm second
// after the last shedding.
func TestOverloadEnds(t *testing.T) {
	var logged bytes.Buffer
	target := 200 * time.Millisecond
	o := newOverload(func() time.Duration { return target }, slog.New(slog.NewTextHandler(&logged, nil)))
	queued := o.queuedIn()
	now := time.Unix(1000, 0)
	overload := func() {
		for range overloadAbove + 1 {
			for range overloadSamples {
				queued(300*time.Millisecond, now)
			}
			now = now.Add(overloadInterval)
		}
		queued(300*time.Millisecond, now)
		if !o.shedding.Load() {
			t.Fatal("not shedding after T1 above the target")
		}
	}

	overload()
	target = 0
	now = now.Add(overloadInterval)
	queued(300*time.Millisecond, now)
	if o.shedding.Load() {
		t.Error("still shedding after overload_delay was set to 0s")
	}

	target = 200 * time.Millisecond
	now = now.Add(2 * overloadCalm)
	overload()
	for range 3 {
		o.refusing()
	}
	// The messages stop: nothing ends the interval but settle.
	o.settle(now.Add(overloadInterval))
	if !o.shedding.Load() {
		t.Error("shedding stopped within one interval of the last message")
	}
	o.settle(now.Add(2 * overloadInterval))
	if o.shedding.Load() {
		t.Error("shedding did not stop within two intervals of the last message")
	}
	if strings.Count(logged.String(), "overload over") != 1 {
		t.Errorf("the second overload's end was logged before its calm second:\n%s", logged.String())
	}
	o.settle(now.Add(overloadCalm + 4*overloadInterval))
	if n := strings.Count(logged.String(), "overload over"); n != 2 {
		t.Errorf("%d ends of overloads logged, want 2:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "refused=3") {
		t.Errorf("the second overload's end does not say it refused 3 calls:\n%s", logged.String())
	}
	if n := strings.Count(logged.String(), "overloaded:"); n != 2 {
		t.Errorf("%d overloads logged, want 2:\n%s", n, logged.String())
	}
}

// TestEmergency checks which Request-URIs call an emergency service: the
// sos service URNs, and the numbers of server.emergency_numbers dialled
// in a sip, sips or tel URI.
func TestEmergency(t *testing.T) {
	numbers := []string{"112", "911"}
	tests := []struct {
		uri     string
		numbers []string
		want    bool
	}{
		{"urn:service:sos", nil, true},
		{"URN:Service:SOS", nil, true},
		{"urn:service:sos.police", nil, true},
		{"urn:service:sossomething", numbers, false},
		{"urn:service:counseling", numbers, false},
		{"sip:sos@example.org", numbers, false},
		{"tel:112", numbers, true},
		{"tel:9-1-1;phone-context=+1", numbers, true},
		{"tel:+112", numbers, false},
		{"sip:112@example.org;user=phone", numbers, true},
		{"sips:911@example.org", numbers, true},
		{"sip:112;phone-context=ims.mnc001.mcc001.3gppnetwork.org@example.org;user=phone", numbers, true},
		{"sip:%2A112@example.org", []string{"*112"}, true},
		{"sip:1120@example.org", numbers, false},
		{"sip:112@example.org", nil, false},
		{"sip:999@example.org", []string{"999"}, true},
		{"sip:example.org", numbers, false},
	}
	for _, tc := range tests {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if got := emergency(&u, tc.numbers); got != tc.want {
			t.Errorf("emergency(%s, %q) = %v, want %v", tc.uri, tc.numbers, got, tc.want)
		}
	}
}
