package rewrite_test

import (
	"net/netip"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/rewrite"
)

const benchRequest = `INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench;rport
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>
Call-ID: bench@192.0.2.10
CSeq: 1 INVITE
Contact: <sip:alice@192.0.2.10:5060>
`

const benchResponse = `SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench;rport=5060
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=a6c85cf
Call-ID: bench@192.0.2.10
CSeq: 1 INVITE
Contact: <sip:bob@192.0.2.20:5060>
`

// BenchmarkRewrite is the rewrite stage alone: the seed's "OK THANKS" on a
// 200, with its `when` rule (the rule environment is built for it) and
// without; a header set on a request; and a header set from a value_expr.
func BenchmarkRewrite(b *testing.B) {
	src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
	for _, tc := range []struct{ name, keys string }{
		{"reason/rule", "when = 'response.code == 200'\nreason = \"OK THANKS\""},
		{"reason/norule", "reason = \"OK THANKS\""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := stagetest.Stage(b, "rewrite", tc.keys)
			req := stagetest.Request(b, benchRequest)
			res := stagetest.Response(b, benchResponse)
			b.ReportAllocs()
			for b.Loop() {
				rc := pipeline.NewResponseContext(h.Pipeline, req, res, false, src, "UDP")
				if err := h.Pipeline.ServeResponse(rc, nil); err != nil || res.Reason != "OK THANKS" {
					b.Fatalf("error %v, reason %q", err, res.Reason)
				}
			}
		})
	}
	for _, tc := range []struct{ name, keys string }{
		{"set_header", "apply_to = \"requests\"\nset_header = { \"X-Proxy\" = \"switchboard\" }"},
		{"value_expr", "apply_to = \"requests\"\nvalue_expr = { \"X-Caller\" = 'from.user + \"@\" + from.host' }"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := stagetest.Stage(b, "rewrite", tc.keys)
			req := stagetest.Request(b, benchRequest)
			b.ReportAllocs()
			for b.Loop() {
				ctx := pipeline.NewContext(h.Pipeline, req, src, "UDP")
				if v, err := h.Pipeline.ServeRequest(ctx, nil); v != pipeline.Continue || err != nil {
					b.Fatalf("verdict %v, error %v", v, err)
				}
			}
		})
	}
}
