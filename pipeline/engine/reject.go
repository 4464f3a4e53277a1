package engine

import (
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// rejectRaw answers a request that sipgo cannot (or must not) parse,
// statelessly, with the status status gives: from the socket that received
// it (local, for UDP; the connection, for a stream) to its source, where
// sipgo answers every request. The answer copies the request's Via, From,
// To, Call-ID and CSeq header fields as they were sent (RFC 3261 8.2.6.2),
// with rport and received filled in as sipgo does (RFC 3581) and a To tag
// added. Nothing is sent for a response, an ACK, what has no Via or CSeq,
// what seems to come from this proxy, or past the rate limit. It reports
// whether it answered.
func (e *Engine) rejectRaw(transport string, local, from net.Addr, data []byte, status func([]byte) (int, string)) bool {
	r, ok := readRawRequest(data)
	if !ok || r.method == "ACK" || !e.answerable(from) {
		return false
	}
	if allowed, _ := e.rejects.allow(time.Now()); !allowed {
		return false
	}
	code, reason := status(data)
	res := rawResponse(r, code, reason, addrPort(from), e.tagSeed)
	e.Pipeline().StampServer(res)
	res.SetDestination(from.String())
	res.SetTransport(transport)
	connAddr := from.String()
	if strings.EqualFold(transport, "UDP") {
		connAddr = local.String()
	}
	conn, err := e.tp.GetConnection(transport, connAddr)
	if err != nil {
		e.log.Debug("unparsed request not answered", "code", code, "remote", from.String(), "error", err)
		return false
	}
	defer conn.TryClose()
	if err := conn.WriteMsg(res); err != nil {
		e.log.Debug("unparsed request not answered", "code", code, "remote", from.String(), "error", err)
		return false
	}
	e.svc.Metrics.Message("in", r.method, 0)
	e.svc.Metrics.Message("out", r.method, code)
	e.log.Debug("unparsed request answered", "code", code, "reason", reason, "remote", from.String(), "transport", transport)
	return true
}

// answerable is mayAnswer, with a debug line when the answer may not go.
func (e *Engine) answerable(from net.Addr) bool {
	if e.mayAnswer(from) {
		return true
	}
	e.log.Debug("unparsed request not answered: its source is no host's, or the proxy's own", "remote", addrString(from))
	return false
}

// addrString is a's address, or "" for none.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// rawResponse makes the answer to r, with a To tag made with seed (see
// localTag).
func rawResponse(r rawRequest, code int, reason string, from netip.AddrPort, seed maphash.Seed) *sip.Response {
	res := sip.NewResponse(code, reason)
	for i, v := range r.vias {
		if i == 0 {
			v = topViaAnswered(unmarkVia(v), from)
		}
		res.AppendHeader(sip.NewHeader("Via", v))
	}
	if r.from != "" {
		res.AppendHeader(sip.NewHeader("From", r.from))
	}
	if r.to != "" {
		to := r.to
		if _, ok := rawParam(to, "tag"); !ok {
			to += ";tag=" + localTag(seed, r.callID)
		}
		res.AppendHeader(sip.NewHeader("To", to))
	}
	if r.callID != "" {
		res.AppendHeader(sip.NewHeader("Call-ID", r.callID))
	}
	res.AppendHeader(sip.NewHeader("CSeq", r.cseq))
	res.SetBody(nil)
	return res
}

// topViaAnswered fills in an empty rport parameter of the top Via with the
// source port, and adds received, as sipgo does for the requests it parses
// (RFC 3581 4).
func topViaAnswered(via string, from netip.AddrPort) string {
	first, rest, many := strings.Cut(via, ",")
	if v, ok := rawParam(first, "rport"); !ok || v != "" {
		return via
	}
	i := indexASCIIFold(first, ";rport")
	if i < 0 {
		return via // "; rport": leave it
	}
	end := i + len(";rport")
	first = first[:end] + "=" + strconv.Itoa(int(from.Port())) + first[end:] + ";received=" + from.Addr().String()
	if many {
		return first + "," + rest
	}
	return first
}

// indexASCIIFold is strings.Index ignoring ASCII case. strings.ToLower
// would not do: it turns invalid UTF-8 into U+FFFD, three bytes, and the
// index would no longer be one into s.
func indexASCIIFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// localTag is the To tag of a stateless answer: the same for every
// retransmission of a request (RFC 3261 8.2.6.2), and another for each
// engine's seed (Engine.tagSeed).
func localTag(seed maphash.Seed, callID string) string {
	return strconv.FormatUint(maphash.String(seed, callID), 36)
}

// mayAnswer reports whether a stateless answer may go to from: a unicast
// address with a port, and not one of this proxy's sockets of its kind (it
// would answer itself; it never answers the answer, a response, in turn).
// A datagram comes from a UDP socket, a connection from a stream one: a
// phone's UDP port that is the number of the proxy's TCP port is not the
// proxy.
func (e *Engine) mayAnswer(from net.Addr) bool {
	if from == nil {
		return false
	}
	ap := addrPort(from)
	ip := ap.Addr()
	if ap.Port() == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	_, datagram := from.(*net.UDPAddr)
	for _, s := range e.sockets {
		if s.Addr.Port() != ap.Port() || datagram != (s.Transport == "UDP") {
			continue
		}
		if ip.IsLoopback() || ip == s.Addr.Addr() || s.Addr.Addr().IsUnspecified() && slices.Contains(e.svc.LocalAddrs, ip) {
			return false
		}
	}
	return true
}
