package engine

import (
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// BenchmarkCallOrder measures what a request's turn costs: its arrival on
// the reader, its entry, its wait (for nothing: the call's only message),
// its end and its transaction's end.
func BenchmarkCallOrder(b *testing.B) {
	reqs := make([]*sip.Request, 1024)
	keys := make([]uint64, len(reqs))
	for i := range reqs {
		msg, err := sip.ParseMessage(fmt.Appendf(nil, "BYE sip:b@127.0.0.1 SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench-%d\r\n"+
			"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\n"+
			"Call-ID: bench-%d\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", i, i))
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = msg.(*sip.Request)
	}
	o := newCallOrder()
	for i := range reqs {
		keys[i], _ = o.txKey(reqs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, key := reqs[i%len(reqs)], keys[i%len(reqs)]
		o.arrivedRequest(req)
		t := o.enter(req, key)
		o.await(t)
		o.end(t)
		o.ended(req, key)
	}
}
