package pipeline

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// loopHashBuilt is LoopHash as it was first written: a string of the parts
// hashed by hash/fnv. LoopHash must give the same hashes, so that a proxy
// of this version sees the loops of one of the earlier ones in a chain.
func loopHashBuilt(req *sip.Request) string {
	var b strings.Builder
	u := &req.Recipient
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	if u.Raw() != "" {
		b.WriteString(u.Raw())
	} else {
		b.WriteString(u.User)
		b.WriteByte('@')
		b.WriteString(strings.ToLower(u.Host))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	b.WriteByte('\n')
	if id := req.CallID(); id != nil {
		b.WriteString(id.Value())
	}
	b.WriteByte('\n')
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		b.WriteString(tag)
	}
	b.WriteByte('\n')
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		b.WriteString(tag)
	}
	b.WriteByte('\n')
	if cs := req.CSeq(); cs != nil {
		b.WriteString(strconv.FormatUint(uint64(cs.SeqNo), 10))
	}
	b.WriteByte('\n')
	if r := req.Route(); r != nil {
		b.WriteString(r.Value())
	}
	h := fnv.New64a()
	h.Write([]byte(b.String()))
	return fmt.Sprintf("%016x", h.Sum64())
}

func TestLoopHash(t *testing.T) {
	tests := []struct {
		name string
		msg  string
	}{
		{"initial INVITE", "INVITE sip:bob@Example.COM:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1@host\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"},
		{"in dialog, routed", "BYE sip:bob@10.0.0.2:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nRoute: <sip:127.0.0.1:5060;lr;sbd=x>, <sip:10.9.9.9;lr>\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b2\r\nCall-ID: c1@host\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"},
		{"no tags, no port", "OPTIONS SIPS:carol@HOST.example SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK3\r\nFrom: <sip:x@y>\r\nTo: <sip:carol@host.example>\r\nCall-ID: c3\r\nCSeq: 0 OPTIONS\r\nContent-Length: 0\r\n\r\n"},
		{"non-ASCII host", "MESSAGE sip:dave@ÉXAMPLE.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK4\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:dave@example.org>\r\nCall-ID: c4\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n"},
		{"tel URI", "INVITE tel:+1-201-555-0123 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK5\r\nFrom: <sip:x@y>;tag=1\r\nTo: <tel:+1-201-555-0123>\r\nCall-ID: c5\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"},
	}
	for i, tc := range tests {
		msg, err := sip.ParseMessage([]byte(tc.msg))
		if err != nil {
			t.Fatalf("test %d (%s): %v", i, tc.name, err)
		}
		req := msg.(*sip.Request)
		got, want := LoopHash(req), loopHashBuilt(req)
		if got != want || len(got) != 16 {
			t.Errorf("test %d (%s): LoopHash %q, want %q", i, tc.name, got, want)
		}
	}
}

func TestTopRoute(t *testing.T) {
	msg, err := sip.ParseMessage([]byte("BYE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	if r := TopRoute(req); r == nil || r.Address.Host != "p1" {
		t.Errorf("TopRoute: %v, want p1", r)
	}
	for req.RemoveHeader("Route") {
	}
	if r := TopRoute(req); r != nil {
		t.Errorf("TopRoute without Route: %v, want nil", r)
	}
	if n := testing.AllocsPerRun(100, func() { TopRoute(req) }); n != 0 {
		t.Errorf("TopRoute without Route: %v allocations, want 0", n)
	}
}
