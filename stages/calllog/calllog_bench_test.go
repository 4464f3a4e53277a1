package calllog_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/calllog"
)

// BenchmarkCallLog is the calllog stage alone on every message of one
// call, a new Call-ID each time (INVITE, 180, 200, ACK, BYE, 200): the
// call tracked, its events written to the event log and its record to the
// CDR file, both buffered. The clones of the messages are included: the
// Call-ID of each is replaced.
func BenchmarkCallLog(b *testing.B) {
	for _, format := range []string{"seed", "json"} {
		b.Run(format, func(b *testing.B) {
			dir := b.TempDir()
			h := stagetest.Stage(b, "calllog", fmt.Sprintf("path = %q\nformat = %q\ncdr_path = %q", dir+"/events.log", format, dir+"/cdr.csv"))
			src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
			dialog := "From: <sip:alice@example.org>;tag=1928301774\nTo: <sip:bob@example.org>"
			invite := stagetest.Request(b, "INVITE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n"+dialog+"\nCall-ID: x\nCSeq: 1 INVITE\nContact: <sip:alice@192.0.2.10:5060>\n")
			ack := stagetest.Request(b, "ACK sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-2\n"+dialog+";tag=a6c85cf\nCall-ID: x\nCSeq: 1 ACK\n")
			bye := stagetest.Request(b, "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-3\n"+dialog+";tag=a6c85cf\nCall-ID: x\nCSeq: 2 BYE\n")
			resp := func(code int, reason string, cseq string) *sip.Response {
				return stagetest.Response(b, "SIP/2.0 "+strconv.Itoa(code)+" "+reason+"\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n"+dialog+";tag=a6c85cf\nCall-ID: x\nCSeq: "+cseq+"\nContact: <sip:bob@192.0.2.20:5060>\n")
			}
			ringing, ok, byeOK := resp(180, "Ringing", "1 INVITE"), resp(200, "OK", "1 INVITE"), resp(200, "OK", "2 BYE")
			ids := make([]string, 1<<16)
			for i := range ids {
				ids[i] = "call-" + strconv.Itoa(i) + "@192.0.2.10"
			}
			p := h.Pipeline
			request := func(tmpl *sip.Request, id string) *sip.Request {
				req := tmpl.Clone()
				cid := sip.CallIDHeader(id)
				req.ReplaceHeader(&cid)
				if v, err := p.ServeRequest(pipeline.NewContext(p, req, src, "UDP"), nil); v != pipeline.Continue || err != nil {
					b.Fatalf("%s: verdict %v, error %v", req.Method, v, err)
				}
				return req
			}
			response := func(req *sip.Request, tmpl *sip.Response, id string) {
				res := tmpl.Clone()
				cid := sip.CallIDHeader(id)
				res.ReplaceHeader(&cid)
				if err := p.ServeResponse(pipeline.NewResponseContext(p, req, res, false, src, "UDP"), nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[i&(len(ids)-1)]
				i++
				inv := request(invite, id)
				response(inv, ringing, id)
				response(inv, ok, id)
				request(ack, id)
				response(request(bye, id), byeOK, id)
			}
		})
	}
}
