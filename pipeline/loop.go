package pipeline

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// LoopParam is the Via parameter in which the engine writes LoopHash of
// every branch it sends. A request that comes back carrying a Via of ours
// with its own hash has looped (RFC 3261 16.3 step 4): the parse stage
// answers it with 482.
const LoopParam = "sbloop"

// LoopHash returns a short, stable hex hash of the parts of req that decide
// where the proxy sends it (RFC 3261 16.6 step 8): the Request-URI without
// its parameters, the Call-ID, the From and To tags, the CSeq number and the
// top Route. The engine computes it on each branch as it leaves; a request
// that arrives with the same hash in one of our Vias is that branch come
// back unchanged, while one whose hash differs is spiralling.
func LoopHash(req *sip.Request) string {
	var b strings.Builder
	u := &req.Recipient
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	if u.Raw() != "" {
		b.WriteString(u.Raw())
	} else {
		b.WriteString(u.User)
		b.WriteByte('@')
		b.WriteString(strings.ToLower(u.Host))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	b.WriteByte('\n')
	if id := req.CallID(); id != nil {
		b.WriteString(id.Value())
	}
	b.WriteByte('\n')
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		b.WriteString(tag)
	}
	b.WriteByte('\n')
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		b.WriteString(tag)
	}
	b.WriteByte('\n')
	if cs := req.CSeq(); cs != nil {
		b.WriteString(strconv.FormatUint(uint64(cs.SeqNo), 10))
	}
	b.WriteByte('\n')
	if r := req.Route(); r != nil {
		b.WriteString(r.Value())
	}
	h := fnv.New64a()
	h.Write([]byte(b.String()))
	return fmt.Sprintf("%016x", h.Sum64())
}
