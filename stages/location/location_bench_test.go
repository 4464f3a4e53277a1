package location_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	loc "github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// BenchmarkLocation is the location stage alone: an INVITE for bob, who
// has one phone registered, turned into its branch (the store's Lookup
// and the Contact's parsing included).
func BenchmarkLocation(b *testing.B) {
	h := stagetest.Stage(b, "location", "")
	now := time.Now()
	_, err := h.Location().Update("bob", now, func([]loc.Binding) ([]loc.Binding, error) {
		return []loc.Binding{{Contact: "sip:bob@192.0.2.20:5060;transport=udp", Expires: now.Add(time.Hour),
			CallID: "reg-1", CSeq: 1, Received: "192.0.2.20:5060", Transport: "UDP", Updated: now}}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	req := stagetest.Request(b, request("INVITE", "sip:bob@example.org", "", ""))
	src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
	b.ReportAllocs()
	for b.Loop() {
		ctx := pipeline.NewContext(h.Pipeline, req, src, "UDP")
		if v, err := h.Pipeline.ServeRequest(ctx, nil); v != pipeline.Continue || err != nil || len(ctx.Targets) != 1 {
			b.Fatalf("verdict %v, error %v, %d targets", v, err, len(ctx.Targets))
		}
	}
}
