package forward_test

import (
	"net/netip"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
)

// BenchmarkForward is the forward stage alone: its verdict and timers
// (the relaying itself is the engine's, measured by the harness in
// examples/bench).
func BenchmarkForward(b *testing.B) {
	h := stagetest.Stage(b, "forward", "")
	req := stagetest.Request(b, `BYE sip:bob@192.0.2.20:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench;rport
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench@192.0.2.10
CSeq: 2 BYE
`)
	src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
	b.ReportAllocs()
	for b.Loop() {
		ctx := pipeline.NewContext(h.Pipeline, req, src, "UDP")
		if v, err := h.Pipeline.ServeRequest(ctx, nil); v != pipeline.Forwarded || err != nil {
			b.Fatalf("verdict %v, error %v", v, err)
		}
	}
}
