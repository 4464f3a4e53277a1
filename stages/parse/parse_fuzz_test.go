package parse

import (
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// fuzzSeeds are requests for FuzzParseStage's seed corpus, besides the RFC
// 4475 torture messages in testdata/fuzz/FuzzParseStage: one per check of
// the stage, written as a phone sends them.
var fuzzSeeds = []string{
	message("INVITE sip:bob@example.org SIP/2.0"),
	message("INVITE sip:bob@example.org SIP/7.0"),
	message("INVITE sip:bob@example.org SIP/2.0", "Call-ID: -"),
	message("INVITE sip:bob@example.org SIP/2.0", "From: Eve <sip:eve@example.org>;tag=2"),
	message("INVITE sip:bob@example.org?Route=%3Csip:evil.example%3E SIP/2.0"),
	message("INVITE http://example.org/ SIP/2.0"),
	message("INVITE tel:+15551234 SIP/2.0"),
	message("INVITE sip:example.org SIP/2.0"),
	message("BYE sip:bob@example.org SIP/2.0"),
	message("INVITE sip:bob@example.org SIP/2.0", "Contact: -"),
	message("INVITE sip:bob@example.org SIP/2.0", "Max-Forwards: 0"),
	message("OPTIONS sip:example.org SIP/2.0", "CSeq: 1 OPTIONS", "Max-Forwards: 0"),
	message("INVITE sip:bob@example.org SIP/2.0", "Proxy-Require: foo, bar"),
	message("ACK sip:bob@example.org SIP/2.0", "CSeq: 314159 ACK", "Max-Forwards: 0"),
	message("CANCEL sip:bob@example.org SIP/2.0", "CSeq: 314159 CANCEL", "Proxy-Require: foo"),
	message("INVITE sip:bob@example.org SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;sbloop=0000000000000000",
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds"),
	message("REGISTER sip:example.org SIP/2.0", "CSeq: 1 REGISTER", "Contact: *", "Expires: 0"),
}

// FuzzParseStage feeds raw bytes to sipgo's parser, as the transport does,
// and every request it accepts to the parse stage, which must never panic
// nor fail, and must answer only with the codes it documents, in a
// response that sipgo can parse back (when it can parse back the request). The seed corpus is fuzzSeeds and the
// RFC 4475 torture messages (testdata/fuzz/FuzzParseStage).
func FuzzParseStage(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	allowed := []int{400, 416, 420, 482, 483, 505}
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := sip.ParseMessage(raw)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		h := stagetest.Stage(t, "parse", "")
		r := h.Request(req)
		if r.Err != nil {
			t.Fatalf("the stage failed: %v\n%s", r.Err, raw)
		}
		switch r.Verdict {
		case pipeline.Continue:
		case pipeline.Dropped:
			if !req.IsAck() {
				t.Fatalf("dropped a %s; only a broken ACK is dropped\n%s", req.Method, raw)
			}
		case pipeline.Replied:
			if req.IsAck() {
				t.Fatalf("answered an ACK; a broken ACK is dropped\n%s", raw)
			}
			if !slices.Contains(allowed, r.Code()) {
				t.Fatalf("replied %d %q, want one of %v\n%s", r.Code(), r.Reason(), allowed, raw)
			}
			// A response copies the request's Via, From, To, Call-ID and
			// CSeq: it parses back whenever the request, as sipgo writes
			// it, does (sipgo reads some headers it cannot write back).
			if _, err := sip.ParseMessage([]byte(req.String())); err != nil {
				return
			}
			if _, err := sip.ParseMessage([]byte(r.Reply.String())); err != nil {
				t.Fatalf("the %d does not parse back (%v):\n%s\nrequest:\n%s", r.Code(), err, r.Reply, raw)
			}
		default:
			t.Fatalf("verdict %v\n%s", r.Verdict, raw)
		}
	})
}
