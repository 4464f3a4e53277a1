package recordroute_test

import (
	"net/netip"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/record_route"
)

// BenchmarkRecordRoute is the record_route stage alone on an INVITE (the
// engine writes the header on each branch; this is the stage's part).
func BenchmarkRecordRoute(b *testing.B) {
	h := stagetest.Stage(b, "record_route", "")
	req := stagetest.Request(b, `INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench;rport
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>
Call-ID: bench@192.0.2.10
CSeq: 1 INVITE
`)
	src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
	b.ReportAllocs()
	for b.Loop() {
		ctx := pipeline.NewContext(h.Pipeline, req, src, "UDP")
		if v, err := h.Pipeline.ServeRequest(ctx, nil); v != pipeline.Continue || err != nil || !ctx.RecordRoute {
			b.Fatalf("verdict %v, error %v, record-route %v", v, err, ctx.RecordRoute)
		}
	}
}
