package engine

import (
	"io"
	"log/slog"
	"strconv"
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
			play := func(w wait, now time.Time) {
				if w.socket {
					o.queued(w.d, now)
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

// TestStampedArrival has datagrams wait in a stamped socket before their
// reads: the wait reported for the one sampled is at least as long, and
// every datagram and its source come through as from a plain read.
func TestStampedArrival(t *testing.T) {
	conn := listenUDP(t, "127.0.0.1")
	if !stampArrivals(conn) {
		t.Skip("the kernel does not stamp datagrams here")
	}
	r := newReaderShare(conn, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var waits []time.Duration
	r.stamped, r.oob = conn, make([]byte, stampOOB)
	r.queued = func(d time.Duration, _ time.Time) { waits = append(waits, d) }
	sender := listenUDP(t, "127.0.0.1")
	for i := range stampEvery {
		if _, err := sender.WriteTo([]byte("OPTIONS "+strconv.Itoa(i)), conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	const held = 50 * time.Millisecond
	time.Sleep(held) // the datagrams wait in the socket: the wait to measure
	buf := make([]byte, 100)
	for i := range stampEvery {
		n, from, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := "OPTIONS " + strconv.Itoa(i); string(buf[:n]) != want || from.String() != sender.LocalAddr().String() {
			t.Errorf("read %q from %s, want %q from %s", buf[:n], from, want, sender.LocalAddr())
		}
	}
	// Every stampEvery-th read asks for the arrival time.
	if len(waits) != 1 || waits[0] < held || waits[0] > time.Minute {
		t.Errorf("waits reported %v, want one of at least %s", waits, held)
	}
}

// TestArrivedAt reads the receive time out of control messages, and
// nothing out of malformed ones.
func TestArrivedAt(t *testing.T) {
	conn := listenUDP(t, "127.0.0.1")
	if !stampArrivals(conn) {
		t.Skip("the kernel does not stamp datagrams here")
	}
	sender := listenUDP(t, "127.0.0.1")
	before := time.Now()
	if _, err := sender.WriteTo([]byte("x"), conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	oob := make([]byte, stampOOB)
	_, oobn, _, _, err := conn.ReadMsgUDPAddrPort(make([]byte, 10), oob)
	if err != nil {
		t.Fatal(err)
	}
	oob = oob[:oobn]
	tests := []struct {
		name string
		oob  []byte
		ok   bool
	}{
		{"as read", oob, true},
		{"none", nil, false},
		{"cut short", oob[:len(oob)-4], false},
		{"a header alone", oob[:len(oob)/2], false},
	}
	for _, tc := range tests {
		at, ok := arrivedAt(tc.oob)
		if ok != tc.ok {
			t.Errorf("%s: found %v, want %v", tc.name, ok, tc.ok)
		}
		if ok && (at.Before(before.Add(-time.Second)) || at.After(time.Now())) {
			t.Errorf("%s: arrived at %s, sent at %s", tc.name, at, before)
		}
	}
}

// TestCoreOverloadSheds puts the proxy in overload: a new INVITE gets 503
// with Retry-After and never reaches the callee, while the call already up
// ends through the proxy and an OPTIONS is answered; once the queue
// drained, new calls go through again.
func TestCoreOverloadSheds(t *testing.T) {
	c := newCore(t, productChain)
	callee := newPhone(t, "bob", answering(nil, 200))
	c.register(callee, "bob")
	caller := newPhone(t, "alice", nil)
	inv := caller.call(c, "bob", "overload-up")
	ok := caller.waitResponse(inv, 200)
	caller.send(c.addr, caller.inDialog(sip.ACK, ok, 1))
	callee.waitRequest(sip.ACK, "overload-up", 1)

	// Waits played an hour ahead: the proxy's own, taken now, fall
	// before the interval they would end.
	o := c.e.overload
	ahead := time.Now().Add(time.Hour)
	for i := range overloadAbove {
		for range overloadSamples {
			o.queued(300*time.Millisecond, ahead.Add(time.Duration(i)*overloadInterval))
		}
	}
	ahead = ahead.Add(overloadAbove * overloadInterval)
	o.queued(300*time.Millisecond, ahead)
	if !c.e.Overloaded() || c.e.QueueDelay() != 300*time.Millisecond {
		t.Fatalf("overloaded %v with a standing delay of %s, want true and 300ms", c.e.Overloaded(), c.e.QueueDelay())
	}

	shed := caller.call(c, "bob", "overload-shed")
	res := caller.waitResponse(shed, 300)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("a new call in overload was answered %d %s, want 503 with Retry-After", res.StatusCode, res.Reason)
	}
	caller.send(c.addr, ackOf(shed, res))
	if n := c.e.OverloadRefused(); n != 1 {
		t.Errorf("OverloadRefused() = %d, want 1", n)
	}
	bye := caller.inDialog(sip.BYE, ok, 2)
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
		o.queued(0, ahead)
	}
	o.queued(0, ahead.Add(overloadInterval))
	if c.e.Overloaded() {
		t.Fatal("still overloaded after an interval without a queue")
	}
	again := caller.call(c, "bob", "overload-after")
	if res := caller.waitResponse(again, 200); res.StatusCode != 200 {
		t.Errorf("a new call after the overload was answered %d, want 200", res.StatusCode)
	}
}
