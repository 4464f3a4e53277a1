package capture

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	caller = netip.MustParseAddrPort("192.0.2.1:5060")
	callee = netip.MustParseAddrPort("192.0.2.2:5062")
	proxy  = netip.MustParseAddrPort("127.0.0.1:5060")
)

func sipMsg(first, callID, cseq, to string) []byte {
	return []byte(fmt.Sprintf("%s\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nFrom: \"<script>\" <sip:alice@x>;tag=a\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n", first, to, callID, cseq))
}

func TestRecorderCall(t *testing.T) {
	r := NewRecorder(10, 1<<20, 10)
	at := time.Unix(1700000000, 0)
	feed := func(dir string, src, dst netip.AddrPort, msg []byte) {
		at = at.Add(time.Second)
		r.Record(&Packet{Time: at, Transport: "UDP", Src: src, Dst: dst, Payload: msg}, dir, false)
	}
	// The decisions on the INVITE arrive before the message itself.
	r.Decide("c1", StepKey(true, 0, "1  INVITE"), Decision{Stage: "1:registrar", Matched: false})
	r.Decide("c1", StepKey(true, 0, "1 INVITE"), Decision{Stage: "2:location", Matched: true, Verdict: "forwarded"})
	feed("in", caller, proxy, sipMsg("INVITE sip:bob@x SIP/2.0", "c1", "1 INVITE", "<sip:bob@x>"))
	feed("out", proxy, callee, sipMsg("INVITE sip:bob@192.0.2.2 SIP/2.0", "c1", "1 INVITE", "<sip:bob@x>"))
	feed("in", callee, proxy, sipMsg("SIP/2.0 180 Ringing", "c1", "1 INVITE", "<sip:bob@x>;tag=b"))
	feed("out", proxy, caller, sipMsg("SIP/2.0 180 Ringing", "c1", "1 INVITE", "<sip:bob@x>;tag=b"))
	feed("in", callee, proxy, sipMsg("SIP/2.0 486 Busy Here", "c1", "1 INVITE", "<sip:bob@x>;tag=b"))
	feed("out", proxy, caller, sipMsg("SIP/2.0 486 Busy Here", "c1", "1 INVITE", "<sip:bob@x>;tag=b"))
	// Not a call: kept neither as messages nor as a record.
	feed("in", caller, proxy, sipMsg("REGISTER sip:x SIP/2.0", "r1", "1 REGISTER", "<sip:alice@x>"))

	msgs, ok := r.Call("c1")
	if !ok || len(msgs) != 6 {
		t.Fatalf("call c1: %d messages, %v", len(msgs), ok)
	}
	want := []struct{ dir, src, dst, first string }{
		{"in", "192.0.2.1:5060", "proxy", "INVITE sip:bob@x SIP/2.0"},
		{"out", "proxy", "192.0.2.2:5062", "INVITE sip:bob@192.0.2.2 SIP/2.0"},
		{"in", "192.0.2.2:5062", "proxy", "SIP/2.0 180 Ringing"},
		{"out", "proxy", "192.0.2.1:5060", "SIP/2.0 180 Ringing"},
	}
	for i, w := range want {
		m := msgs[i]
		if m.Direction != w.dir || m.Src != w.src || m.Dst != w.dst || m.FirstLine != w.first {
			t.Errorf("message %d: %s %s->%s %q, want %+v", i, m.Direction, m.Src, m.Dst, m.FirstLine, w)
		}
	}
	if d := msgs[0].Decisions; len(d) != 2 || d[1].Verdict != "forwarded" {
		t.Errorf("decisions on the INVITE: %+v", d)
	}
	if len(msgs[1].Decisions) != 0 {
		t.Errorf("decisions on a message written: %+v", msgs[1].Decisions)
	}
	if _, ok := r.Call("r1"); ok {
		t.Error("a REGISTER was kept as a call")
	}
	cdr, ok := r.CDR("c1")
	if !ok || cdr.Outcome != "busy" || cdr.Code != 486 || cdr.End.IsZero() || !strings.Contains(cdr.From, "<script>") {
		t.Errorf("record: %+v", cdr)
	}
}

func TestRecorderBounds(t *testing.T) {
	msgSize := len(sipMsg("INVITE sip:bob@x SIP/2.0", "c0", "1 INVITE", "<sip:bob@x>"))
	tests := []struct {
		calls, bytes, traced int
		wantKept             int
	}{
		{calls: 3, bytes: 1 << 20, wantKept: 3},
		{calls: 3, bytes: 1 << 20, traced: 2, wantKept: 5}, // traced calls past the count
		{calls: 100, bytes: 4 * msgSize, wantKept: 4},      // the bytes bound
	}
	for i, tc := range tests {
		r := NewRecorder(tc.calls, tc.bytes, 5)
		for n := 0; n < 10; n++ {
			msg := sipMsg("INVITE sip:bob@x SIP/2.0", fmt.Sprint("c", n), "1 INVITE", "<sip:bob@x>")
			r.Record(&Packet{Time: time.Now(), Src: caller, Payload: msg}, "in", n < tc.traced)
		}
		kept := 0
		for n := 0; n < 10; n++ {
			if _, ok := r.Call(fmt.Sprint("c", n)); ok {
				kept++
			}
		}
		if kept != tc.wantKept {
			t.Errorf("test %d: %d calls kept, want %d", i, kept, tc.wantKept)
		}
		if r.bytes > tc.bytes {
			t.Errorf("test %d: %d bytes held, bound %d", i, r.bytes, tc.bytes)
		}
		if len(r.CDRs()) != 5 {
			t.Errorf("test %d: %d records, want 5", i, len(r.CDRs()))
		}
	}
}

// TestRecorderOrder checks that a message written goes before the answers
// to it that the tracer reported first (it reports a write after the write
// returns), with their time, and that nothing else moves.
func TestRecorderOrder(t *testing.T) {
	invite := func(dir string) step { return step{dir, callee, "INVITE sip:bob@192.0.2.2 SIP/2.0", "1 INVITE", 0} }
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "a 180 read before the INVITE it answers is reported",
			steps: []step{{"in", caller, "INVITE sip:bob@x SIP/2.0", "1 INVITE", 0}, {"in", callee, "SIP/2.0 180 Ringing", "1 INVITE", 1}, invite("out")},
			want:  []string{"in INVITE sip:bob@x", "out INVITE sip:bob@192.0.2.2", "in SIP/2.0 180 Ringing"},
		},
		{
			name:  "an ACK read before the 200 it acknowledges is reported",
			steps: []step{{"in", caller, "ACK sip:bob@x SIP/2.0", "1 ACK", 0}, {"out", caller, "SIP/2.0 200 OK", "1 INVITE", 1}},
			want:  []string{"out SIP/2.0 200 OK", "in ACK sip:bob@x"},
		},
		{
			name:  "answers in order stay",
			steps: []step{{"out", callee, "BYE sip:bob SIP/2.0", "2 BYE", 0}, {"in", callee, "SIP/2.0 200 OK", "2 BYE", 1}},
			want:  []string{"out BYE sip:bob", "in SIP/2.0 200 OK"},
		},
		{
			name:  "a request to another party is no cause",
			steps: []step{{"in", callee, "SIP/2.0 200 OK", "2 BYE", 0}, {"out", caller, "BYE sip:alice SIP/2.0", "2 BYE", 1}},
			want:  []string{"in SIP/2.0 200 OK", "out BYE sip:alice"},
		},
		{
			name:  "a retransmission is no cause of the answer to the copy before it",
			steps: []step{invite("out"), {"in", callee, "SIP/2.0 100 Trying", "1 INVITE", 1}, {"out", callee, "INVITE sip:bob@192.0.2.2 SIP/2.0", "1 INVITE", 500}},
			want:  []string{"out INVITE sip:bob@192.0.2.2", "in SIP/2.0 100 Trying", "out INVITE sip:bob@192.0.2.2"},
		},
		{
			name:  "an ACK is no cause of a response",
			steps: []step{{"in", callee, "SIP/2.0 200 OK", "1 INVITE", 0}, {"out", callee, "ACK sip:bob SIP/2.0", "1 ACK", 1}},
			want:  []string{"in SIP/2.0 200 OK", "out ACK sip:bob"},
		},
	}
	for i, tc := range tests {
		r := NewRecorder(10, 1<<20, 10)
		t0 := time.Unix(1700000000, 0)
		for _, s := range tc.steps {
			p := &Packet{Time: t0.Add(s.ms * time.Millisecond), Transport: "UDP", Src: s.peer, Dst: proxy}
			if s.dir == "out" {
				p.Src, p.Dst = proxy, s.peer
			}
			p.Payload = sipMsg(s.first, "c1", s.cseq, "<sip:bob@x>")
			r.Record(p, s.dir, true)
		}
		msgs, _ := r.Call("c1")
		var got []string
		for j, m := range msgs {
			got = append(got, m.Direction+" "+strings.TrimSuffix(m.FirstLine, " SIP/2.0"))
			if j > 0 && m.Time.Before(msgs[j-1].Time) {
				t.Errorf("test %d (%s): message %d at %v, before message %d at %v", i, tc.name, j, m.Time, j-1, msgs[j-1].Time)
			}
		}
		if strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
			t.Errorf("test %d (%s): order %q, want %q", i, tc.name, got, tc.want)
		}
	}
}

// step is one message of TestRecorderOrder, reported ms after the first:
// read from peer (dir "in") or written to it ("out").
type step struct {
	dir   string
	peer  netip.AddrPort
	first string
	cseq  string
	ms    time.Duration
}

func TestSingleSpaced(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"1 INVITE", "1 INVITE"},
		{"1  INVITE", "1 INVITE"},
		{"1\tINVITE", "1 INVITE"},
		{" 1 INVITE ", "1 INVITE"},
		{"12 BYE", "12 BYE"},
	} {
		if got := singleSpaced(c.in); got != c.want {
			t.Errorf("singleSpaced(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// BenchmarkRecorderRecord is the recorder's cost for every message of a
// call it keeps (7 read, 7 written), the oldest calls dropped past its
// bound.
func BenchmarkRecorderRecord(b *testing.B) {
	r := NewRecorder(200, 16<<20, 200)
	at := time.Unix(1700000000, 0)
	msgs := make([]struct {
		dir      string
		src, dst netip.AddrPort
		text     []byte
	}, 0, 14)
	add := func(first, cseq, to string, in, out netip.AddrPort) {
		m := sipMsg(first, "CALLID", cseq, to)
		msgs = append(msgs, struct {
			dir      string
			src, dst netip.AddrPort
			text     []byte
		}{"in", in, proxy, m}, struct {
			dir      string
			src, dst netip.AddrPort
			text     []byte
		}{"out", proxy, out, m})
	}
	add("INVITE sip:bob@x SIP/2.0", "1 INVITE", "<sip:bob@x>", caller, callee)
	add("SIP/2.0 100 Trying", "1 INVITE", "<sip:bob@x>", callee, caller)
	add("SIP/2.0 180 Ringing", "1 INVITE", "<sip:bob@x>;tag=b", callee, caller)
	add("SIP/2.0 200 OK", "1 INVITE", "<sip:bob@x>;tag=b", callee, caller)
	add("ACK sip:bob@192.0.2.2 SIP/2.0", "1 ACK", "<sip:bob@x>;tag=b", caller, callee)
	add("BYE sip:bob@192.0.2.2 SIP/2.0", "2 BYE", "<sip:bob@x>;tag=b", caller, callee)
	add("SIP/2.0 200 OK", "2 BYE", "<sip:bob@x>;tag=b", callee, caller)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Appendf(nil, "call-%d", i)
		for _, m := range msgs {
			at = at.Add(time.Millisecond)
			payload := bytes.Replace(m.text, []byte("CALLID"), id, 1)
			r.Record(&Packet{Time: at, Transport: "UDP", Src: m.src, Dst: m.dst, Payload: payload}, m.dir, false)
		}
	}
}
