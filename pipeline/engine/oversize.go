package engine

import (
	"strconv"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// maxMessageSize is the largest message p accepts: [server]
// max_message_size, never more than sipgo's parser takes.
func maxMessageSize(p *pipeline.Pipeline) int {
	if p == nil || p.Config == nil || p.Config.Server.MaxMessageSize <= 0 {
		return sip.ParseMaxMessageLength
	}
	return min(p.Config.Server.MaxMessageSize, sip.ParseMaxMessageLength)
}

// tooLarge answers 513 Message Too Large (RFC 3261 21.5.14) to a request
// of size bytes, larger than limit, unparsed.
func (e *Engine) tooLarge(info sip.TransportReadProps, data []byte, size, limit int) {
	status := func([]byte) (int, string) {
		return 513, "Message Too Large: " + strconv.Itoa(size) + " bytes, at most " + strconv.Itoa(limit)
	}
	if !e.rejectRaw(transportName(info.Transport), info.LocalAddr, info.RemoteAddr, data, status) {
		e.log.Debug("message too large: dropped", "size", size, "max", limit, "remote", info.RemoteAddr.String(), "transport", info.Transport)
	}
}
