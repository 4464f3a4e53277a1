package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/dialog"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestCompleted checks what the table of completed transactions finds: the
// same method within the linger, with the final response as sent for a
// non-INVITE and none for an INVITE; and that it forgets what expired.
func TestCompleted(t *testing.T) {
	bye := stagetest.Request(t, "BYE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bye\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>;tag=b\nCall-ID: c1\nCSeq: 2 BYE\n")
	inv := stagetest.Request(t, "INVITE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-inv\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>\nCall-ID: c1\nCSeq: 1 INVITE\n")
	ack := stagetest.Request(t, "ACK sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-inv\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>;tag=b\nCall-ID: c1\nCSeq: 1 ACK\n")
	// Two methods no constant of sipgo names, whose request lines say
	// other than their CSeq: the key's hash (of the CSeq's) is one.
	foo := stagetest.Request(t, "FOO sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-foo\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>;tag=b\nCall-ID: c1\nCSeq: 3 BAZ\n")
	bar := stagetest.Request(t, "BAR sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-foo\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>;tag=b\nCall-ID: c1\nCSeq: 3 BAZ\n")
	byeOK := sip.NewResponseFromRequest(bye, 200, "OK THANKS", nil)
	invOK := sip.NewResponseFromRequest(inv, 200, "OK", nil)
	t0 := time.Unix(1000, 0)
	linger := 5 * time.Second

	tests := []struct {
		name  string
		req   *sip.Request
		hash  uint64
		at    time.Duration // after t0
		found bool
		final bool // with a response kept
	}{
		{"a BYE retransmitted within the linger", bye, 1, 4 * time.Second, true, true},
		{"a BYE retransmitted at the end of the linger", bye, 1, linger, false, false},
		{"an INVITE retransmitted within the linger", inv, 2, time.Second, true, false},
		{"the ACK of the 2xx with the INVITE's branch", ack, 2, time.Second, false, false},
		{"a method retransmitted", foo, 3, time.Second, true, true},
		{"another method under the key's hash", bar, 3, time.Second, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCompleted(linger)
			c.add(1, sip.BYE, byeOK, t0)
			c.add(2, sip.INVITE, invOK, t0)
			c.add(3, foo.Method, byeOK, t0)
			got, ok := c.find(tc.hash, tc.req, t0.Add(tc.at))
			if ok != tc.found || (got.final != nil) != tc.final {
				t.Fatalf("found %v with a final response %v, want %v and %v", ok, got.final != nil, tc.found, tc.final)
			}
			if !tc.final {
				return
			}
			if got.dest != byeOK.Destination() {
				t.Errorf("kept the destination %q, want %q", got.dest, byeOK.Destination())
			}
			if string(got.final) != byeOK.String() {
				t.Errorf("kept\n%s\nwant the response as sent\n%s", got.final, byeOK.String())
			}
		})
	}
}

// TestCompletedExpiry checks that the table forgets in the order it
// learnt, keeps a key added again after it expired, and gives its room
// back once empty.
func TestCompletedExpiry(t *testing.T) {
	bye := stagetest.Request(t, "BYE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bye\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>;tag=b\nCall-ID: c1\nCSeq: 2 BYE\n")
	ok := sip.NewResponseFromRequest(bye, 200, "OK", nil)
	c := newCompleted(time.Second)
	t0 := time.Unix(1000, 0)
	for i := range 3000 {
		c.add(uint64(i), sip.BYE, ok, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := c.len(t0.Add(3500 * time.Millisecond)); n != 499 {
		t.Errorf("3.5 s in, %d kept, want the 499 added after 2.5 s", n)
	}
	// Key 2999 added again: its first expiry must not take the second.
	c.add(2999, sip.BYE, ok, t0.Add(3500*time.Millisecond))
	if n := c.len(t0.Add(4200 * time.Millisecond)); n != 1 {
		t.Errorf("4.2 s in, %d kept, want the key added again alone", n)
	}
	if _, found := c.find(2999, bye, t0.Add(4200*time.Millisecond)); !found {
		t.Error("a key added again was forgotten at its first expiry")
	}
	if n := c.len(t0.Add(10 * time.Second)); n != 0 || c.m != nil || c.fifo != nil {
		t.Errorf("after every expiry: %d kept, map %v, queue of %d", n, c.m != nil, len(c.fifo))
	}
}

// TestCompletedChunks: the responses kept read back as they were added,
// however many chunks they fill and in whatever order INVITEs (which keep
// none) come between them; a chunk is dropped once what is in it expired,
// and not before; the chunks start small again once the table emptied.
func TestCompletedChunks(t *testing.T) {
	bye := stagetest.Request(t, "BYE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bye\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>;tag=b\nCall-ID: c1\nCSeq: 2 BYE\n")
	inv := stagetest.Request(t, "INVITE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-inv\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:bob@example.org>\nCall-ID: c1\nCSeq: 1 INVITE\n")
	const linger = 5 * time.Second
	c := newCompleted(linger)
	t0 := time.Unix(1000, 0)
	pad := strings.Repeat("p", 900)
	want := map[uint64]string{}
	const n = 4000 // some four chunks of responses
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond / 2)
		if i%3 == 0 {
			c.add(uint64(i), sip.INVITE, sip.NewResponseFromRequest(inv, 200, "OK", nil), at)
			continue
		}
		res := sip.NewResponseFromRequest(bye, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("X-N", fmt.Sprintf("%d-%s", i, pad)))
		res.SetDestination(fmt.Sprintf("127.0.0.1:%d", 10000+i))
		c.add(uint64(i), sip.BYE, res, at)
		want[uint64(i)] = res.String()
	}
	if len(c.chunks) < 3 {
		t.Fatalf("%d chunks for %d responses, want several", len(c.chunks), len(want))
	}
	for after := linger - time.Millisecond; after < linger+2*time.Second; after += 10 * time.Millisecond {
		now := t0.Add(after)
		for i := range n {
			expired := time.Duration(i)*time.Millisecond/2+linger <= after
			req := bye
			if i%3 == 0 {
				req = inv
			}
			got, ok := c.find(uint64(i), req, now)
			switch {
			case ok == expired:
				t.Fatalf("+%v: entry %d found %v, expired %v", after, i, ok, expired)
			case ok && req == bye && (string(got.final) != want[uint64(i)] || got.dest != fmt.Sprintf("127.0.0.1:%d", 10000+i)):
				t.Fatalf("+%v: entry %d read back %.60q to %s", after, i, got.final, got.dest)
			case ok && req == inv && got.final != nil:
				t.Fatalf("+%v: the INVITE %d has a response kept", after, i)
			}
		}
		// Every chunk kept holds a live entry, but perhaps the last one.
		if len(c.chunks) > 1 {
			oldest := c.fifo[c.head].chunk
			if oldest != c.first {
				t.Errorf("+%v: chunk %d kept, the oldest entry is in %d", after, c.first, oldest)
			}
		}
	}
	if c.len(t0.Add(time.Hour)) != 0 || c.chunks != nil {
		t.Errorf("%d chunks kept once all expired", len(c.chunks))
	}

	// A table that emptied starts again with a small chunk.
	c.add(2, sip.BYE, sip.NewResponseFromRequest(bye, 200, "OK", nil), t0.Add(time.Hour))
	if len(c.chunks) != 1 || cap(c.chunks[0]) != minChunkSize {
		t.Errorf("a table that emptied has %d chunks, the first of %d bytes; want one of %d", len(c.chunks), cap(c.chunks[0]), minChunkSize)
	}
	c = newCompleted(linger)

	// A response larger than a chunk gets one of its own.
	big := sip.NewResponseFromRequest(bye, 200, "OK", nil)
	big.SetBody([]byte(strings.Repeat("b", completedChunkSize+1)))
	c.add(1, sip.BYE, big, t0)
	if got, ok := c.find(1, bye, t0); !ok || string(got.final) != big.String() {
		t.Errorf("a response larger than a chunk: found %v, %d bytes of %d", ok, len(got.final), len(big.String()))
	}
}

// TestCoreRetransmissionAfterSipgo has the caller retransmit its INVITE and
// its BYE once sipgo ended their transactions (sipgoAbsorb after an
// INVITE's final response, at once for the BYE's: writeKept) but within
// server.linger: the INVITE answered with a 2xx is absorbed and the BYE
// answered again, and neither reaches the callee twice. The ACK, given the INVITE's branch, still goes through.
func TestCoreRetransmissionAfterSipgo(t *testing.T) {
	c := newCoreWith(t, productChain, Options{Linger: 10 * time.Second})
	const id = "completed-1"
	callee := newPhone(t, "bob", answering(nil, 200))
	c.register(callee, "bob")
	caller := newPhone(t, "alice", nil)
	inv := caller.call(c, "bob", id)
	ok := caller.waitResponse(inv, 200)
	gone := func() bool { return c.e.Lingering() == 0 && c.e.Completed() >= 2 }
	poll(t, "sipgo ended the REGISTER's and the INVITE's transactions", gone)

	caller.send(c.addr, inv)
	ack := caller.inDialog(sip.ACK, ok, 1)
	caller.send(c.addr, ack)
	callee.waitRequest(sip.ACK, id, 1)
	if n := len(callee.find(requestsOf(sip.INVITE, id))); n != 1 {
		t.Errorf("the callee got %d INVITEs, want the first alone:\n%s", n, callee.dump())
	}
	// The turn the absorbed INVITE got on arrival ended with it: kept,
	// it would hold the call's next messages back.
	poll(t, "no turn left in the call", func() bool { return c.e.calls.turnsOf(id) == 0 })
	caller.sync()
	if n := len(caller.find(responsesTo(inv, 100))); n != 2 {
		t.Errorf("the caller got %d responses, want the 100 and the 200 alone:\n%s", n, caller.dump())
	}
	// An ACK given its INVITE's branch is not taken for the INVITE.
	branch, _ := inv.Via().Params.Get("branch")
	ack.Via().Params.Add("branch", branch)
	caller.send(c.addr, ack)
	callee.waitRequest(sip.ACK, id, 2)

	// The BYE retransmitted at once, as a 200 lost on its way would have
	// it, and again once every transaction ended.
	bye := caller.inDialog(sip.BYE, ok, 2)
	caller.send(c.addr, bye)
	first := caller.waitResponse(bye, 200)
	caller.send(c.addr, bye)
	again := caller.wait("the 200 to the BYE retransmitted at once", 2, responsesTo(bye, 200)).msg.(*sip.Response)
	poll(t, "sipgo ended the BYE's transaction", gone)
	caller.sync()
	if n := len(caller.find(responsesTo(bye, 200))); n != 2 {
		t.Errorf("the caller got %d answers to two BYEs:\n%s", n, caller.dump())
	}
	caller.send(c.addr, bye)
	late := caller.wait("the 200 to the BYE retransmitted late", 3, responsesTo(bye, 200)).msg.(*sip.Response)
	poll(t, "sipgo ended the late BYE's transaction", gone)
	caller.sync()
	if n := len(caller.find(responsesTo(bye, 200))); n != 3 {
		t.Errorf("the caller got %d answers to three BYEs:\n%s", n, caller.dump())
	}
	for _, res := range []*sip.Response{again, late} {
		if res.String() != first.String() {
			t.Errorf("the BYE's retransmission was answered\n%s\nwant the first answer again\n%s", res, first)
		}
	}
	if n := len(callee.find(requestsOf(sip.BYE, id))); n != 1 {
		t.Errorf("the callee got %d BYEs, want the first alone:\n%s", n, callee.dump())
	}
}

// TestUnshiftCSeq checks that a 2xx relayed without its client transaction
// gets back the CSeq number of its caller's request in a dialog whose
// numbers the proxy raised towards the callee, and only there.
func TestUnshiftCSeq(t *testing.T) {
	e := &Engine{dialogs: dialog.NewMemory()}
	now := time.Now()
	shifted := dialog.NewID("shifted", "caller", "callee")
	plain := dialog.NewID("plain", "caller", "callee")
	for id, shift := range map[dialog.ID]uint32{shifted: 1, plain: 0} {
		if err := e.dialogs.Update(id, now, func(d *dialog.Dialog, _ bool) bool {
			*d = dialog.Dialog{CallerTag: "caller", Confirmed: true, Expires: now.Add(time.Hour), CallerCSeqShift: shift}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name             string
		callID, from, to string
		seq, want        uint32
	}{
		{"the caller's INVITE in a shifted dialog", "shifted", "caller", "callee", 3, 2},
		{"the callee's request in a shifted dialog", "shifted", "callee", "caller", 3, 3},
		{"a dialog not shifted", "plain", "caller", "callee", 3, 3},
		{"no dialog", "unknown", "caller", "callee", 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := stagetest.Response(t, fmt.Sprintf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\nFrom: <sip:a@example.org>;tag=%s\nTo: <sip:b@example.org>;tag=%s\nCall-ID: %s\nCSeq: %d INVITE\n", tc.from, tc.to, tc.callID, tc.seq))
			e.unshiftCSeq(res, now)
			if got := res.CSeq().SeqNo; got != tc.want {
				t.Errorf("CSeq %d, want %d", got, tc.want)
			}
		})
	}
}

// turnsOf is the number of turns the call id has.
func (o *callOrder) turnsOf(id string) int {
	s := o.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls[id])
}

// BenchmarkCompletedAdd measures what remembering an answered BYE costs:
// its time, and the bytes kept beside the response's (B/op counts both).
func BenchmarkCompletedAdd(b *testing.B) {
	bye := stagetest.Request(b, "BYE sip:bob@127.0.0.3:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-bye;rport=5060;received=127.0.0.2\nFrom: <sip:alice@example.org>;tag=a1b2c3\nTo: <sip:bob@example.org>;tag=d4e5f6\nCall-ID: 1-2717@127.0.0.2\nCSeq: 2 BYE\nContent-Length: 0\n")
	ok := sip.NewResponseFromRequest(bye, 200, "OK", nil)
	c := newCompleted(time.Hour)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.add(uint64(i), sip.BYE, ok, now)
	}
	b.ReportMetric(float64(len(ok.String())), "response-bytes")
}
