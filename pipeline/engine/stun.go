package engine

import (
	"net"

	"github.com/switchboard-sip/switchboard/pipeline/metrics"
	"github.com/switchboard-sip/switchboard/pipeline/stun"
)

// answerSTUN answers a STUN Binding request read on the UDP socket local
// (RFC 5626 section 8: a phone's keepalive, which also tells it the
// address its NAT gave it). It reports whether data was STUN: the read
// filter then drops it, answered or not, instead of handing sipgo a
// datagram it would fail to parse.
func (e *Engine) answerSTUN(local, from net.Addr, data []byte) bool {
	if !stun.Is(data) {
		return false
	}
	req, err := stun.Parse(data)
	if err != nil {
		return true
	}
	res, ok := stun.Answer(req, addrPort(from))
	if !ok {
		return true
	}
	w := e.watchOf(local)
	if w == nil {
		return true
	}
	if _, err := w.WriteTo(res, from); err != nil {
		e.log.Debug("stun response not sent", "to", from.String(), "error", err)
		return true
	}
	e.svc.Metrics.Keepalive(metrics.KeepaliveSTUN)
	return true
}
