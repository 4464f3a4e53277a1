package engine

import (
	"bytes"
	"encoding/hex"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// A request from an RFC 2543 client has no magic cookie "z9hG4bK" in its
// top Via branch (often no branch at all), and RFC 3261 17.2.3 has it
// matched to its transaction by the fields RFC 2543 used: Request-URI,
// From tag, Call-ID, CSeq number and top Via, the same for an INVITE, its
// retransmissions, its CANCEL and the ACK of a non-2xx answer. sipgo's
// transaction layer does match such requests itself, but needs a From tag
// (inv2543.dat has none), and misses one written with spaces around "="
// (wsinv.dat's "tag = 98asjd8"): it answers both 400.
//
// So the read filter gives such a request an RFC 3261 branch of its own
// before sipgo parses it: ";branch=z9hG4bK-2543-<process>-<hash of those
// fields>", inserted as the first parameter of the top Via, where sipgo
// looks first. The retransmissions and the ACK get the same branch, so
// sipgo matches them to the transaction; a CANCEL is matched by the engine
// (inviteKey) from its bytes as sent. restoreVia takes the branch off the
// request sipgo hands over, so that the Via is the client's again in what
// the proxy forwards and answers.

// rfc2543Branch starts the branches made for RFC 2543 requests. The random
// part tells them from a client's own branches.
var rfc2543Branch = "z9hG4bK-2543-" + strconv.FormatUint(uint64(rand.Uint32()), 16) + "-"

// rfc2543Seed keys the hash, so that no client can make two transactions
// collide on purpose.
var rfc2543Seed = maphash.MakeSeed()

// markRFC2543 returns data with an RFC 3261 branch of the proxy's own in
// its top Via when the request in it has none; otherwise data itself. Only
// the cheap check runs for a request with a cookie in the first line of
// its top Via.
//
// The ACK of a 2xx is another transaction (RFC 3261 17.1.1.3, RFC 6026):
// were it given its INVITE's branch, sipgo's INVITE server transaction,
// in its Accepted state, would take it and the callee never see it. So an
// ACK whose INVITE answered2xx reports as answered with a 2xx gets a
// branch of its own (rfc2543AckHash).
func markRFC2543(data []byte, answered2xx func(hash string) bool) []byte {
	if len(data) == 0 || data[0] == 'S' && bytes.HasPrefix(data, []byte("SIP/")) || hasRFC3261Branch(data) {
		return data
	}
	r, ok := readRawRequest(data)
	if !ok || r.topVia == nil {
		return data
	}
	top := r.topVia
	at, end := viaBranch(top)
	if at >= 0 && isRFC3261Branch(top[at:end]) {
		return data // a cookie in a folded Via
	}
	hash := rfc2543Hash(r.uri, r.from, r.callID, r.cseq, top)
	if r.method == "ACK" && answered2xx != nil && answered2xx(hash) {
		hash = rfc2543AckHash(hash)
	}
	branch := rfc2543Branch + hash
	if at >= 0 {
		branch += "." // the client's branch follows
	} else {
		at = topViaParams(top)
		branch = ";branch=" + branch
	}
	at += valueStart(data, top)
	out := make([]byte, 0, len(data)+len(branch))
	out = append(out, data[:at]...)
	out = append(out, branch...)
	return append(out, data[at:]...)
}

// valueStart returns where value, a subslice of data, starts in data.
func valueStart(data, value []byte) int {
	return cap(data) - cap(value)
}

// topViaParams returns where the parameters of the first value of a Via
// header start (its first ";"), or, without any, where the value ends.
func topViaParams(via []byte) int {
	quoted := false
	for i, c := range via {
		switch {
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == ';':
			return i
		case c == ',':
			return len(bytes.TrimRight(via[:i], " \t\r\n"))
		}
	}
	return len(bytes.TrimRight(via, " \t\r\n"))
}

// hasRFC3261Branch is the cheap check: whether the request in data has a
// one-line top Via whose branch sipgo takes for an RFC 3261 one. It reads
// no further than the first Via; false means "look closer", not "no".
func hasRFC3261Branch(data []byte) bool {
	i := bytes.IndexByte(data, '\n')
	for i >= 0 {
		rest := data[i+1:]
		j := bytes.IndexByte(rest, '\n')
		if j <= 1 {
			return false // the end of the header section, or of the data
		}
		if value, ok := viaValue(rest[:j]); ok {
			if j+1 < len(rest) && (rest[j+1] == ' ' || rest[j+1] == '\t') {
				return false // folded
			}
			return viaHasRFC3261Branch(value)
		}
		i += 1 + j
	}
	return false
}

// viaValue returns the value of a header line when it is a Via ("Via:",
// "v:", any case, spaces before the colon).
func viaValue(line []byte) ([]byte, bool) {
	if line[0]|0x20 != 'v' {
		return nil, false
	}
	k := 1
	if len(line) > 2 && line[1]|0x20 == 'i' && line[2]|0x20 == 'a' {
		k = 3
	}
	for k < len(line) && (line[k] == ' ' || line[k] == '\t') {
		k++
	}
	if k >= len(line) || line[k] != ':' {
		return nil, false
	}
	return line[k+1:], true
}

// viaHasRFC3261Branch reports whether the first value of a raw Via header
// value has a branch sipgo takes for an RFC 3261 one. The usual Via (one
// ";branch=" with the cookie, no comma or quote before it) is told at once.
func viaHasRFC3261Branch(via []byte) bool {
	const marked = ";branch=" + sip.RFC3261BranchMagicCookie
	if b := bytes.Index(via, []byte(marked)); b >= 0 {
		rest := via[b+len(marked):]
		if len(rest) > 0 && !isLWS(rest[0]) && rest[0] != ';' && rest[0] != ',' &&
			bytes.IndexByte(via[:b], ',') < 0 && bytes.IndexByte(via[:b], '"') < 0 &&
			!bytes.Contains(rest, []byte("branch=")) {
			return true
		}
	}
	start, end := viaBranch(via)
	return start >= 0 && isRFC3261Branch(via[start:end])
}

// viaBranch returns where the branch of the first value of a raw Via
// header value starts and ends, as sipgo reads it: the last "branch="
// parameter (sipgo keeps the last of a repeated parameter, and skips white
// space after ";"). start is -1 without one. A first value with a quoted
// string has none here: sipgo's reading of it is no better.
func viaBranch(via []byte) (start, end int) {
	if c := bytes.IndexByte(via, ','); c >= 0 {
		via = via[:c]
	}
	if bytes.IndexByte(via, '"') >= 0 {
		return -1, -1
	}
	start = -1
	for off := 0; ; {
		i := bytes.Index(via[off:], []byte("branch="))
		if i < 0 {
			break
		}
		i += off
		j := i
		for j > 0 && isLWS(via[j-1]) {
			j--
		}
		if j > 0 && via[j-1] == ';' {
			start = i + len("branch=")
		}
		off = i + len("branch=")
	}
	if start < 0 {
		return -1, -1
	}
	end = start
	for end < len(via) && !isLWS(via[end]) && via[end] != ';' {
		end++
	}
	return start, end
}

// isRFC3261Branch reports whether a branch has the magic cookie and more.
func isRFC3261Branch(branch []byte) bool {
	const cookie = sip.RFC3261BranchMagicCookie
	return len(branch) > len(cookie) && string(branch[:len(cookie)]) == cookie
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// rfc2543Hash hashes what RFC 3261 17.2.3 matches an RFC 2543 request by,
// from the raw values: Request-URI, From tag, Call-ID, CSeq number and the
// top Via's sent-by. Neither the method nor the To tag, so that an INVITE
// and the ACK of its non-2xx answer hash the same.
func rfc2543Hash(uri, from, callID, cseq string, topVia []byte) string {
	tag, _ := rawParam(from, "tag")
	num, _, _ := strings.Cut(cseq, " ")
	num = strings.TrimLeft(num, "0")
	var h maphash.Hash
	h.SetSeed(rfc2543Seed)
	for _, s := range []string{uri, tag, callID, num, sentBy(rawValue(topVia))} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	var sum [8]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// answered2543 reports whether the RFC 2543 INVITE transaction whose
// branch has hash sent a 2xx.
func (e *Engine) answered2543(hash string) bool {
	_, ok := e.answered2xx2543.Load(hash)
	return ok
}

// rfc2543AckHash is the hash in the branch of the ACK of a 2xx, made from
// its INVITE's: as long, unlike it.
func rfc2543AckHash(invite string) string {
	var h maphash.Hash
	h.SetSeed(rfc2543Seed)
	h.WriteString(invite)
	h.WriteString("\x00ACK of a 2xx")
	var sum [8]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// sentBy returns the sent-by of the first value of a Via, in lower case:
// "SIP / 2.0 / UDP Host:5060;branch=x" gives "host:5060".
func sentBy(via string) string {
	for range 2 {
		_, via, _ = strings.Cut(via, "/")
	}
	via = strings.TrimLeft(via, " \t")
	if i := strings.IndexAny(via, " \t"); i >= 0 {
		via = via[i:] // after the transport
	}
	if i := strings.IndexAny(via, ";,"); i >= 0 {
		via = via[:i]
	}
	return strings.ToLower(strings.Join(strings.Fields(via), ""))
}

// restoreVia gives the top Via of req back the branch it was sent with,
// taking off what markRFC2543 added, and returns the hash that was in it
// ("" for a request that was not marked). It is the first thing the engine
// does with a request from sipgo.
func restoreVia(req *sip.Request) (hash string) {
	via := req.Via()
	if via == nil {
		return ""
	}
	for i, p := range via.Params {
		if p.K != "branch" {
			continue
		}
		if client, marked := unmarkBranch(p.V); marked {
			hash = strings.TrimPrefix(p.V, rfc2543Branch)[:16]
			if client, ok := strings.CutPrefix(client, "."); ok {
				via.Params[i].V = client
			} else {
				via.Params = slices.Delete(via.Params, i, i+1)
			}
		}
		return hash
	}
	return ""
}

// unmarkBranch returns what follows the proxy's mark in a branch value:
// "" when the client sent no branch, "." and the client's branch when it
// did.
func unmarkBranch(branch string) (string, bool) {
	rest, ok := strings.CutPrefix(branch, rfc2543Branch)
	if !ok || len(rest) < 16 {
		return branch, false
	}
	return rest[16:], true
}

// unmarkVia takes out of a raw Via value what markRFC2543 added.
func unmarkVia(via string) string {
	i := strings.Index(via, "branch="+rfc2543Branch)
	if i < 0 {
		return via
	}
	value := i + len("branch=")
	client, marked := unmarkBranch(via[value:])
	if !marked {
		return via
	}
	if client, ok := strings.CutPrefix(client, "."); ok {
		return via[:value] + client
	}
	return strings.TrimSuffix(via[:i], ";") + client
}
