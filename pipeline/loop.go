package pipeline

import (
	"strconv"
	"strings"
	"unicode/utf8"

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
// top Route. The engine computes it on the request as received, after
// route processing and before the stages retarget it, and writes it into
// the Via of every branch; a request that arrives with the same hash in
// one of our Vias is that request come back unchanged (a loop), while one
// whose hash differs was retargeted and is spiralling.
func LoopHash(req *sip.Request) string {
	// FNV-1a over the same bytes as fnv.New64a on a string of the parts,
	// a newline after each, without building that string.
	h := fnv64a(fnvOffset)
	u := &req.Recipient
	h.lower(u.Scheme)
	h.byte(':')
	if u.Raw() != "" {
		h.str(u.Raw())
	} else {
		h.str(u.User)
		h.byte('@')
		h.lower(u.Host)
		h.byte(':')
		h.uint(uint64(u.Port))
	}
	h.byte('\n')
	if id := req.CallID(); id != nil {
		h.str(id.Value())
	}
	h.byte('\n')
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		h.str(tag)
	}
	h.byte('\n')
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		h.str(tag)
	}
	h.byte('\n')
	if cs := req.CSeq(); cs != nil {
		h.uint(uint64(cs.SeqNo))
	}
	h.byte('\n')
	if r := TopRoute(req); r != nil {
		h.str(r.Value())
	}
	var out [16]byte
	v := uint64(h)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = "0123456789abcdef"[v&0xf]
		v >>= 4
	}
	return string(out[:])
}

// TopRoute returns the top Route header of req, or nil. sipgo's
// req.Route() allocates an empty header each time it finds none.
func TopRoute(req *sip.Request) *sip.RouteHeader {
	if req.GetHeader("Route") == nil {
		return nil
	}
	return req.Route()
}

// fnv64a is a 64-bit FNV-1a hash (hash/fnv's New64a) fed without
// allocating.
type fnv64a uint64

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (h *fnv64a) byte(c byte) {
	*h ^= fnv64a(c)
	*h *= fnvPrime
}

func (h *fnv64a) str(s string) {
	for i := 0; i < len(s); i++ {
		h.byte(s[i])
	}
}

// lower hashes s in ASCII lower case, as strings.ToLower would give it for
// a scheme or a host name.
func (h *fnv64a) lower(s string) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			h.str(strings.ToLower(s))
			return
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h.byte(c)
	}
}

func (h *fnv64a) uint(n uint64) {
	var buf [20]byte
	for _, c := range strconv.AppendUint(buf[:0], n, 10) {
		h.byte(c)
	}
}
