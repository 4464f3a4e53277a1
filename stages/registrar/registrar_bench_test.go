package registrar_test

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/registrar"
)

const benchRegister = `REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench;rport
Max-Forwards: 70
From: <sip:u0@example.org>;tag=1928301774
To: <sip:u0@example.org>
Call-ID: reg-bench@192.0.2.10
CSeq: 1 REGISTER
Contact: <sip:u0@192.0.2.10:5060>
Expires: 3600
`

// BenchmarkRegistrar is the registrar stage alone, in memory, on a
// REGISTER (the engine's clone of the request included, since each one is
// changed): new-aor binds a new user each time, refresh re-registers one
// of 1024 users with a higher CSeq. max_aors is set above what b.N
// reaches, so that the count is checked but never refuses.
func BenchmarkRegistrar(b *testing.B) {
	src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
	users := make([]string, 1<<20)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	run := func(b *testing.B, user func(i int) string, cseq func(i int) uint32) {
		h := stagetest.Stage(b, "registrar", "max_aors = 1_000_000_000")
		tmpl := stagetest.Request(b, benchRegister)
		tmpl.SetSource(src.String())
		tmpl.SetTransport("UDP")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			req := tmpl.Clone()
			req.To().Address.User = user(i)
			cs := &sip.CSeqHeader{SeqNo: cseq(i), MethodName: sip.REGISTER}
			req.ReplaceHeader(cs)
			ctx := pipeline.NewContext(h.Pipeline, req, src, "UDP")
			v, err := h.Pipeline.ServeRequest(ctx, nil)
			if v != pipeline.Replied || err != nil || ctx.Response().StatusCode != 200 {
				b.Fatalf("verdict %v, error %v, reply %v", v, err, ctx.Response())
			}
			i++
		}
	}
	b.Run("new-aor", func(b *testing.B) {
		run(b, func(i int) string { return users[i&(len(users)-1)] + "-" + strconv.Itoa(i>>20) },
			func(int) uint32 { return 1 })
	})
	b.Run("refresh", func(b *testing.B) {
		run(b, func(i int) string { return users[i&1023] }, func(i int) uint32 { return uint32(i>>10) + 1 })
	})
}
