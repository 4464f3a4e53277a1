package engine

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// errMessageTooLarge closes a stream whose message was answered 513: there
// is no telling where the next message starts.
var errMessageTooLarge = errors.New("message larger than [server] max_message_size: answered 513, connection closed")

// maxMessageSize is the largest message p accepts: [server]
// max_message_size, never more than sipgo's parser takes.
func maxMessageSize(p *pipeline.Pipeline) int {
	if p == nil || p.Config == nil || p.Config.Server.MaxMessageSize <= 0 {
		return sip.ParseMaxMessageLength
	}
	return min(p.Config.Server.MaxMessageSize, sip.ParseMaxMessageLength)
}

// streamMessageSize returns the size a request at the start of a stream
// read declares, when that may be more than limit: its header section and
// its Content-Length. It returns 0 when data does not start with a
// request's whole header section (sipgo then enforces its own limit, and
// closes the stream past it), and when the request is surely within limit.
//
// A TCP read is usually a whole message: the usual Content-Length header is
// found with one search, and the header section's end looked for only when
// the size is close to limit.
func streamMessageSize(data []byte, limit int) int {
	if len(data) == 0 || data[0] < 'A' || data[0] > 'Z' || bytes.HasPrefix(data, []byte("SIP/")) {
		return 0
	}
	if i := bytes.Index(data, []byte("Content-Length:")); i > 0 && data[i-1] == '\n' {
		value, _ := rawLine(data, i+len("Content-Length:"))
		if n, err := strconv.Atoi(string(bytes.TrimSpace(value))); err == nil && n >= 0 && len(data)+n <= limit {
			return 0 // within the limit, whatever the header section's end
		}
	}
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	head := data[:end+4]
	return len(head) + contentLength(head)
}

// contentLength returns the Content-Length of a header section, 0 without
// a readable one.
func contentLength(head []byte) int {
	_, off := rawLine(head, 0)
	s := headerScanner{data: head, off: off}
	for {
		name, value, more := s.next()
		if !more {
			return 0
		}
		if headerIs(name, "content-length", "l") {
			n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil || n < 0 {
				return 0
			}
			return n
		}
	}
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
