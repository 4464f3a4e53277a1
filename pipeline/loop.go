package pipeline

import (
	"hash/fnv"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// LoopParam is the Via parameter in which the proxy writes LoopHash of each
// request it forwards. A request that comes back carrying one of our Vias
// with the same hash has looped (RFC 3261 16.3 step 4): the parse stage
// answers it with 482.
const LoopParam = "sbloop"

// LoopHash is a short hash of the fields that decide where a request goes:
// the Request-URI, the top Route, the Call-ID, the From and To tags and the
// CSeq number. A spiral (the same request sent back to us with a changed
// Request-URI) hashes differently and is not a loop.
func LoopHash(req *sip.Request) string {
	h := fnv.New64a()
	write := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	write(req.Recipient.Scheme + ":" + req.Recipient.User + "@" + req.Recipient.Host + ":" + strconv.Itoa(req.Recipient.Port))
	if r := req.Route(); r != nil {
		write(r.Address.Host + ":" + strconv.Itoa(r.Address.Port))
	}
	if id := req.CallID(); id != nil {
		write(id.Value())
	}
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		write(tag)
	}
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		write(tag)
	}
	if cs := req.CSeq(); cs != nil {
		write(strconv.FormatUint(uint64(cs.SeqNo), 10))
	}
	return strconv.FormatUint(h.Sum64(), 36)
}
