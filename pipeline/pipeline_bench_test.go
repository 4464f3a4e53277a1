package pipeline_test

// Benchmarks of the whole pipeline, per request, per response and per
// call, with the minimal chain, the seed's chain and the seed's chain
// without its `when` rules; and, to compare with, what sipgo spends on the
// same messages (parsing, cloning, writing).
//
//	go test -run '^$' -bench . -benchmem ./pipeline/

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

// benchChains are the chains measured: the minimal one, the seed's, and
// the seed's with no `when` rule (the registrar runs on every request and
// returns at once for other methods; rewrite runs on every response).
var benchChains = []struct {
	name string
	toml func(dir string) string
}{
	{"minimal", func(string) string {
		return `
[[stage]]
use  = "registrar"
when = 'request.method == "REGISTER"'

[[stage]]
use = "location"

[[stage]]
use = "record_route"

[[stage]]
use = "forward"
`
	}},
	{"seed", func(dir string) string { return seedChain(dir, true) }},
	{"seed-norules", func(dir string) string { return seedChain(dir, false) }},
}

func seedChain(dir string, rules bool) string {
	regWhen, rwWhen := `when = 'request.method == "REGISTER"'`, `when = 'response.code == 200'`
	if !rules {
		regWhen, rwWhen = "", ""
	}
	return fmt.Sprintf(`
[[stage]]
use = "parse"

[[stage]]
use = "registrar"
%s

[[stage]]
use = "location"

[[stage]]
use = "record_route"

[[stage]]
use    = "rewrite"
%s
reason = "OK THANKS"

[[stage]]
use        = "calllog"
path       = %q
format     = "seed"
cdr_path   = %q
cdr_format = "csv"

[[stage]]
use = "forward"
`, regWhen, rwWhen, dir+"/custom.log", dir+"/cdr.csv")
}

// The messages of one call as the stages see them: the caller's INVITE,
// the proxy's 100 Trying, the callee's 180 and 200 relayed upstream, the
// ACK and the BYE after route processing (our Route removed), and the 200
// to the BYE.
const (
	benchInvite = `INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-1;rport
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>
Call-ID: bench-call
CSeq: 1 INVITE
Contact: <sip:alice@192.0.2.10:5060;transport=UDP>
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE
User-Agent: bench
Content-Type: application/sdp

v=0
o=alice 53655765 2353687637 IN IP4 192.0.2.10
s=Talk
c=IN IP4 192.0.2.10
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
`
	benchRinging = `SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-1;rport=5060;received=192.0.2.10
Record-Route: <sip:127.0.0.1:5060;lr;transport=udp>
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench-call
CSeq: 1 INVITE
Contact: <sip:bob@192.0.2.20:5060;transport=UDP>
`
	benchOK = `SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-1;rport=5060;received=192.0.2.10
Record-Route: <sip:127.0.0.1:5060;lr;transport=udp>
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench-call
CSeq: 1 INVITE
Contact: <sip:bob@192.0.2.20:5060;transport=UDP>
Content-Type: application/sdp

v=0
o=bob 2890844527 2890844527 IN IP4 192.0.2.20
s=Talk
c=IN IP4 192.0.2.20
t=0 0
m=audio 7000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
`
	benchAck = `ACK sip:bob@192.0.2.20:5060;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-2;rport
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench-call
CSeq: 1 ACK
Contact: <sip:alice@192.0.2.10:5060;transport=UDP>
`
	benchBye = `BYE sip:bob@192.0.2.20:5060;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-3;rport
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench-call
CSeq: 2 BYE
Contact: <sip:alice@192.0.2.10:5060;transport=UDP>
`
	benchByeOK = `SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-3;rport=5060;received=192.0.2.10
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench-call
CSeq: 2 BYE
`
)

var benchSource = pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}

// callMessages are the parsed messages of one call.
type callMessages struct {
	invite, ack, bye       *sip.Request
	ringing, ok, byeOK     *sip.Response
	trying                 *sip.Response
	raw                    [][]byte // the seven messages as text, for sipgo's parser
	inviteRaw, responseRaw []byte
}

func newCallMessages(b *testing.B) *callMessages {
	m := &callMessages{
		invite:  stagetest.Request(b, benchInvite),
		ack:     stagetest.Request(b, benchAck),
		bye:     stagetest.Request(b, benchBye),
		ringing: stagetest.Response(b, benchRinging),
		ok:      stagetest.Response(b, benchOK),
		byeOK:   stagetest.Response(b, benchByeOK),
	}
	for _, r := range []*sip.Request{m.invite, m.ack, m.bye} {
		r.SetSource(benchSource.String())
		r.SetTransport("UDP")
	}
	m.trying = sip.NewResponseFromRequest(m.invite, 100, "Trying", nil)
	for _, msg := range []sip.Message{m.invite, m.trying, m.ringing, m.ok, m.ack, m.bye, m.byeOK} {
		m.raw = append(m.raw, []byte(msg.String()))
	}
	m.inviteRaw, m.responseRaw = m.raw[0], m.raw[3]
	return m
}

// benchHarness builds a chain with bob registered at 192.0.2.20:5060.
func benchHarness(b *testing.B, chain string) *stagetest.Harness {
	h := stagetest.Chain(b, chain)
	now := time.Now()
	_, err := h.Location().Update("bob", now, func([]location.Binding) ([]location.Binding, error) {
		return []location.Binding{{Contact: "sip:bob@192.0.2.20:5060", Expires: now.Add(time.Hour), CallID: "reg-1", CSeq: 1,
			Received: "192.0.2.20:5060", Transport: "UDP", Updated: now}}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// withCallID sets a new Call-ID on m, a clone: sipgo's clones share the
// Call-ID header, so it is replaced, not changed.
func withCallID(m interface{ ReplaceHeader(sip.Header) }, id string) {
	h := sip.CallIDHeader(id)
	m.ReplaceHeader(&h)
}

// serveRequest runs a clone of req through p as the engine does: a clone,
// a Context, the request stages.
func serveRequest(b *testing.B, p *pipeline.Pipeline, req *sip.Request, callID string, routed bool, want pipeline.Verdict) *sip.Request {
	work := req.Clone()
	if callID != "" {
		withCallID(work, callID)
	}
	ctx := pipeline.NewContext(p, work, benchSource, "UDP")
	// An in-dialog request came with the Route this proxy recorded for its
	// dialog, which the engine checked and removed.
	ctx.Routed, ctx.SignedRoute = routed, routed
	v, err := p.ServeRequest(ctx, nil)
	if err != nil || v != want {
		b.Fatalf("%s: verdict %v, error %v; want %v", req.Method, v, err, want)
	}
	return work
}

// serveResponse runs a clone of res, the answer to req, through the
// response stages.
func serveResponse(b *testing.B, p *pipeline.Pipeline, req *sip.Request, res *sip.Response, callID string, local bool) {
	work := res.Clone()
	if callID != "" {
		withCallID(work, callID)
	}
	rc := pipeline.NewResponseContext(p, req, work, local, benchSource, "UDP")
	if err := p.ServeResponse(rc, nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPipelineRequest is one initial INVITE through the request
// stages, a new call each time (a new Call-ID), the engine's clone of the
// request included.
func BenchmarkPipelineRequest(b *testing.B) {
	for _, c := range benchChains {
		b.Run(c.name, func(b *testing.B) {
			h := benchHarness(b, c.toml(b.TempDir()))
			m := newCallMessages(b)
			ids := callIDs(1 << 16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				serveRequest(b, h.Pipeline, m.invite, ids[i&(len(ids)-1)], false, pipeline.Forwarded)
				i++
			}
		})
	}
}

// BenchmarkPipelineResponse is the callee's 200 to an INVITE through the
// response stages on its way upstream, the clone included.
func BenchmarkPipelineResponse(b *testing.B) {
	for _, c := range benchChains {
		b.Run(c.name, func(b *testing.B) {
			h := benchHarness(b, c.toml(b.TempDir()))
			m := newCallMessages(b)
			b.ReportAllocs()
			for b.Loop() {
				serveResponse(b, h.Pipeline, m.invite, m.ok, "", false)
			}
		})
	}
}

// BenchmarkPipelineCall is every message of one call through the stages:
// INVITE, 100 (the proxy's), 180, 200, ACK, BYE, 200; ns/msg is the cost
// per message.
func BenchmarkPipelineCall(b *testing.B) {
	for _, c := range benchChains {
		b.Run(c.name, func(b *testing.B) {
			h := benchHarness(b, c.toml(b.TempDir()))
			m := newCallMessages(b)
			ids := callIDs(1 << 16)
			p := h.Pipeline
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[i&(len(ids)-1)]
				i++
				inv := serveRequest(b, p, m.invite, id, false, pipeline.Forwarded)
				serveResponse(b, p, inv, m.trying, id, true)
				serveResponse(b, p, inv, m.ringing, id, false)
				serveResponse(b, p, inv, m.ok, id, false)
				serveRequest(b, p, m.ack, id, true, pipeline.Forwarded)
				bye := serveRequest(b, p, m.bye, id, true, pipeline.Forwarded)
				serveResponse(b, p, bye, m.byeOK, id, false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(7*b.N), "ns/msg")
		})
	}
}

// BenchmarkSipgo is what sipgo spends on the same seven messages of a
// call: parsing them (its transport layer does it once per message read),
// cloning them (the engine clones each request and response it relays),
// and writing them out (once per message sent). The pipeline's cost per
// message (BenchmarkPipelineCall) is to be read against these.
func BenchmarkSipgo(b *testing.B) {
	m := newCallMessages(b)
	msgs := make([]sip.Message, len(m.raw))
	parser := sip.NewParser()
	for i, raw := range m.raw {
		msg, err := parser.ParseSIP(raw)
		if err != nil {
			b.Fatalf("message %d: %v", i, err)
		}
		msgs[i] = msg
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, raw := range m.raw {
				if _, err := parser.ParseSIP(raw); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(m.raw)*b.N), "ns/msg")
	})
	b.Run("clone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, msg := range msgs {
				switch msg := msg.(type) {
				case *sip.Request:
					_ = msg.Clone()
				case *sip.Response:
					_ = msg.Clone()
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(msgs)*b.N), "ns/msg")
	})
	b.Run("write", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			for _, msg := range msgs {
				buf.Reset()
				msg.StringWrite(&buf)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(msgs)*b.N), "ns/msg")
	})
}

// BenchmarkRule is one `when` rule on a request, as the engine runs it:
// "chain" is a request (its Context) through a chain of one stage without
// a rule, "chain+rule" the same with a rule that reads one field, so that
// the rule costs what the second takes more than the first; "match" runs
// the rule alone on an environment built before.
func BenchmarkRule(b *testing.B) {
	m := newCallMessages(b)
	rule, err := pipeline.CompileRule(`request.method == "INVITE"`)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, chain string }{
		{"chain", "[[stage]]\nuse = \"record_route\"\n"},
		{"chain+rule", "[[stage]]\nuse = \"record_route\"\nwhen = '" + rule.Text + "'\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := stagetest.Chain(b, c.chain)
			b.ReportAllocs()
			for b.Loop() {
				ctx := pipeline.NewContext(h.Pipeline, m.invite, benchSource, "UDP")
				if v, err := h.Pipeline.ServeRequest(ctx, nil); v != pipeline.Continue || err != nil || !ctx.RecordRoute {
					b.Fatal(v, err)
				}
			}
		})
	}
	b.Run("match", func(b *testing.B) {
		h := stagetest.Chain(b, benchChains[0].toml(""))
		env := pipeline.NewContext(h.Pipeline, m.invite, benchSource, "UDP").Env()
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := rule.Match(env); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// callIDs returns n distinct Call-IDs (n a power of two).
func callIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "bench-" + strconv.Itoa(i) + "@192.0.2.10"
	}
	return out
}
