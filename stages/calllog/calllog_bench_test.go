package calllog

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// linphoneSDP is the offer of a Linphone Desktop call of the seed.
const linphoneSDP = "v=0\r\n" +
	"o=desktop-linux 3158 1049 IN IP4 192.168.1.232\r\n" +
	"s=Talk\r\n" +
	"c=IN IP4 192.168.1.232\r\n" +
	"t=0 0\r\n" +
	"a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n" +
	"m=audio 7078 RTP/AVP 96 97 98 0 8 99 100 101\r\n" +
	"a=rtpmap:96 opus/48000/2\r\n" +
	"a=fmtp:96 useinbandfec=1\r\n" +
	"a=rtpmap:97 speex/16000\r\n" +
	"a=fmtp:97 vbr=on\r\n" +
	"a=rtpmap:98 speex/8000\r\n" +
	"a=fmtp:98 vbr=on\r\n" +
	"a=rtpmap:99 telephone-event/48000\r\n" +
	"a=rtpmap:100 telephone-event/16000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=rtcp-fb:* trr-int 1000\r\n" +
	"a=rtcp-fb:* ccm tmmbr\r\n"

// benchCall is one call through a pipeline of the calllog stage alone:
// INVITE, 180, 200, ACK, BYE, 200.
type benchCall struct {
	b                  *testing.B
	p                  *pipeline.Pipeline
	src                pipeline.Source
	invite, ack, bye   *sip.Request
	ringing, ok, byeOK *sip.Response
}

// newBenchCall returns a call through a calllog stage writing the event
// log in format and the records in cdrFormat. With sdp, the INVITE and its
// 200 carry Linphone's offer.
func newBenchCall(b *testing.B, format, cdrFormat string, sdp bool) *benchCall {
	dir := b.TempDir()
	h := stagetest.Stage(b, "calllog", fmt.Sprintf("path = %q\nformat = %q\ncdr_path = %q\ncdr_format = %q", dir+"/events.log", format, dir+"/cdr", cdrFormat))
	body := ""
	if sdp {
		body = "Content-Type: application/sdp\nContent-Length: " + strconv.Itoa(len(linphoneSDP)) + "\n\n" + linphoneSDP
	}
	dialog := "From: <sip:alice@example.org>;tag=1928301774\nTo: <sip:bob@example.org>"
	resp := func(code int, reason, cseq, body string) *sip.Response {
		return stagetest.Response(b, "SIP/2.0 "+strconv.Itoa(code)+" "+reason+"\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n"+dialog+";tag=a6c85cf\nCall-ID: x\nCSeq: "+cseq+"\nContact: <sip:bob@192.0.2.20:5060>\n"+body)
	}
	return &benchCall{
		b:       b,
		p:       h.Pipeline,
		src:     pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060},
		invite:  stagetest.Request(b, "INVITE sip:bob@example.org SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n"+dialog+"\nCall-ID: x\nCSeq: 1 INVITE\nContact: <sip:alice@192.0.2.10:5060>\n"+body),
		ack:     stagetest.Request(b, "ACK sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-2\n"+dialog+";tag=a6c85cf\nCall-ID: x\nCSeq: 1 ACK\n"),
		bye:     stagetest.Request(b, "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-3\n"+dialog+";tag=a6c85cf\nCall-ID: x\nCSeq: 2 BYE\n"),
		ringing: resp(180, "Ringing", "1 INVITE", ""),
		ok:      resp(200, "OK", "1 INVITE", body),
		byeOK:   resp(200, "OK", "2 BYE", ""),
	}
}

// run serves the call's messages with Call-ID id. With clone, each message
// is a clone, its Call-ID replaced, as the engine hands a stage a message
// of its own; without, the messages' Call-ID is changed in place.
func (c *benchCall) run(id string, clone bool) {
	request := func(req *sip.Request) *sip.Request {
		if clone {
			cid := sip.CallIDHeader(id)
			req = req.Clone()
			req.ReplaceHeader(&cid)
		} else {
			*req.CallID() = sip.CallIDHeader(id)
		}
		if v, err := c.p.ServeRequest(pipeline.NewContext(c.p, req, c.src, "UDP"), nil); v != pipeline.Continue || err != nil {
			c.b.Fatalf("%s: verdict %v, error %v", req.Method, v, err)
		}
		return req
	}
	response := func(req *sip.Request, res *sip.Response) {
		if clone {
			cid := sip.CallIDHeader(id)
			res = res.Clone()
			res.ReplaceHeader(&cid)
		} else {
			*res.CallID() = sip.CallIDHeader(id)
		}
		if err := c.p.ServeResponse(pipeline.NewResponseContext(c.p, req, res, false, c.src, "UDP"), nil); err != nil {
			c.b.Fatal(err)
		}
	}
	inv := request(c.invite)
	response(inv, c.ringing)
	response(inv, c.ok)
	request(c.ack)
	response(request(c.bye), c.byeOK)
}

// benchIDs are the Call-IDs of BenchmarkCallLog's calls.
var benchIDs = func() []string {
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "call-" + strconv.Itoa(i) + "@192.0.2.10"
	}
	return ids
}()

// BenchmarkCallLog is the calllog stage alone on every message of one
// call, a new Call-ID each time (INVITE, 180, 200, ACK, BYE, 200): the
// call tracked, its events written to the event log and its record to the
// CDR file (CSV), both buffered. The clones of the messages are included:
// the Call-ID of each is replaced.
func BenchmarkCallLog(b *testing.B) {
	for _, format := range []string{"seed", "json"} {
		b.Run(format, func(b *testing.B) {
			c := newBenchCall(b, format, "csv", false)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.run(benchIDs[i&(len(benchIDs)-1)], true)
				i++
			}
		})
	}
}

// BenchmarkCallLogStage is the same call with Linphone's SDP in the
// INVITE and its 200, without the clones: the messages are made once and
// only their Call-ID changes, so that the figures are the stage's own (and
// the pipeline's contexts', and the Call-ID's string: a new one for every
// call, as calls linger after they end). The seed format goes with CSV
// records, json with json ones.
func BenchmarkCallLogStage(b *testing.B) {
	for _, format := range []struct{ events, cdrs string }{{"seed", "csv"}, {"json", "json"}} {
		b.Run(format.events, func(b *testing.B) {
			c := newBenchCall(b, format.events, format.cdrs, true)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.run(strconv.Itoa(i), false)
				i++
			}
		})
	}
}

// BenchmarkParseSDP reads Linphone's offer.
func BenchmarkParseSDP(b *testing.B) {
	body := []byte(linphoneSDP)
	b.ReportAllocs()
	for b.Loop() {
		if m := parseSDP(body); !m.known {
			b.Fatal("not read")
		}
	}
}
