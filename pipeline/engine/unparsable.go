package engine

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// sipgo's UDP transport drops a datagram it cannot parse: it logs the
// failure and reads the next one, and tells no hook (docs/sipgo.md). So
// each UDP socket the engine serves is wrapped in a parseWatch: the read
// filter notes the datagram it hands sipgo (sawDatagram); when sipgo
// parsed it, the engine's message handler, which sipgo calls on the same
// goroutine before it reads again, clears the note (delivered); a note
// the socket's next read still finds is a datagram sipgo could not parse,
// which is parsed once more, for the cause, and answered. Only such a
// datagram costs a second parse.

// parseWatch is a UDP socket as sipgo's reader sees it, with the note of
// the datagram it is parsing.
type parseWatch struct {
	net.PacketConn
	e     *Engine
	local net.Addr // the socket's address, as it returns it (compared by pointer)
	// data is the datagram handed to sipgo; only the reader touches it.
	data []byte
	// from is its source while the note stands: nil once sipgo delivered
	// the message.
	from atomic.Pointer[net.UDPAddr]
}

// watchParses wraps c, a UDP socket about to be served, in a parseWatch.
func (e *Engine) watchParses(c net.PacketConn) net.PacketConn {
	w := &parseWatch{PacketConn: c, e: e, local: c.LocalAddr()}
	var list []*parseWatch
	if l := e.parseWatches.Load(); l != nil {
		list = *l
	}
	list = append(slices.Clip(list), w)
	e.parseWatches.Store(&list)
	return w
}

// ReadFrom answers the datagram read last, if sipgo could not parse it,
// and reads the next.
func (w *parseWatch) ReadFrom(b []byte) (int, net.Addr, error) {
	w.settle()
	return w.PacketConn.ReadFrom(b)
}

// settle answers the noted datagram, if the note still stands, and
// forgets it. It runs on the reader, after sipgo is done with the
// datagram and before its buffer is read into again.
func (w *parseWatch) settle() {
	if from := w.from.Swap(nil); from != nil {
		w.e.answerUnparsable(w.local, from, w.data)
	}
	w.data = nil
}

// sawDatagram notes data, about to be parsed by sipgo, as the datagram
// the socket local read from from. A keep-alive, which sipgo skips
// unparsed, is not noted.
func (e *Engine) sawDatagram(local, from net.Addr, data []byte) {
	f, ok := from.(*net.UDPAddr)
	if !ok || len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0 {
		return
	}
	if w := e.watchOf(local); w != nil {
		w.data = data
		w.from.Store(f)
	}
}

// watchOf returns the watch of the socket local, or nil.
func (e *Engine) watchOf(local net.Addr) *parseWatch {
	if l := e.parseWatches.Load(); l != nil {
		for _, w := range *l {
			if w.local == local {
				return w
			}
		}
	}
	return nil
}

// delivered is a message handler of sipgo's transport layer: it clears
// the note of the datagram msg was parsed from. The socket is not known
// here, only the source: a note from that source is the message's own
// when it is the only one. When two sockets wait on datagrams of one
// source, both notes stay, and each socket's next read parses its
// datagram again: it answers only one that fails. (A message read on a
// UDP socket sipgo opened itself could clear the note of the same source
// on a served socket; the engine sends from its listeners, so sipgo
// opens none.)
func (e *Engine) delivered(msg sip.Message) {
	l := e.parseWatches.Load()
	if l == nil || sip.IsReliable(msg.Transport()) {
		return
	}
	src, err := netip.ParseAddrPort(msg.Source())
	if err != nil {
		return
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	var match *parseWatch
	var from *net.UDPAddr
	for _, w := range *l {
		if f := w.from.Load(); f != nil && addrPort(f) == src {
			if match != nil {
				return
			}
			match, from = w, f
		}
	}
	if match != nil {
		match.from.CompareAndSwap(from, nil)
	}
}

// answerUnparsable answers data, a datagram sipgo dropped, from the socket
// local that read it: 400 or 416 with the reason (badRequest), when it is
// a request to answer (see rejectRaw).
func (e *Engine) answerUnparsable(local net.Addr, from *net.UDPAddr, data []byte) {
	line, _ := rawLine(data, 0)
	method, _, ok := rawRequestLine(line)
	if !ok || method == "ACK" || !e.answerable(from) {
		return
	}
	_, err := e.parser.ParseSIP(data)
	if err == nil {
		return // delivered, its note left behind (see delivered)
	}
	e.rejectRaw("UDP", local, from, data, func(data []byte) (int, string) {
		return badRequest(data, err.Error())
	})
}

// badRequest is the status of the answer to a request that sipgo's parser
// refused with cause: 416 for a Request-URI scheme other than sip, sips
// and tel, else 400 with a reason phrase that says what is wrong.
func badRequest(data []byte, cause string) (int, string) {
	line, off := rawLine(data, 0)
	_, uri, _ := rawRequestLine(line)
	scheme, _, _ := strings.Cut(uri, ":")
	switch {
	case isScheme(scheme) && !slices.Contains([]string{"sip", "sips", "tel"}, strings.ToLower(scheme)):
		return 416, "Unsupported URI Scheme"
	case len(bytes.Fields(line)) != 3 || !bytes.Equal(line, bytes.Join(bytes.Fields(line), []byte(" "))):
		return 400, "Bad Request: malformed Request-Line"
	}
	switch err := sip.ParseUri(uri, &sip.Uri{}); {
	case errors.Is(err, sip.ErrTooManyHeaderParams):
		return 400, "Bad Request: too many parameters in the Request-URI"
	case err != nil:
		return 400, "Bad Request: malformed Request-URI"
	}
	s := headerScanner{data: data, off: off}
	contentLength := 0
	for {
		name, value, more := s.next()
		if !more {
			break
		}
		h, err := headerParsers.ParseHeader(nil, append(append(name[:len(name):len(name)], ':'), rawValue(value)...))
		if errors.Is(err, sip.ErrTooManyHeaderParams) {
			return 400, "Bad Request: too many parameters in " + headerName(name)
		}
		if err != nil {
			return 400, "Bad Request: malformed " + headerName(name)
		}
		for _, h := range h {
			if cl, ok := h.(*sip.ContentLengthHeader); ok {
				contentLength = int(*cl)
			}
		}
	}
	switch {
	case s.off == len(data) && !bytes.HasSuffix(data, []byte("\n\r\n")) && !bytes.HasSuffix(data, []byte("\n\n")):
		return 400, "Bad Request: no empty line after the header fields"
	case contentLength > len(data)-s.off:
		return 400, "Bad Request: Content-Length larger than the message"
	}
	return 400, "Bad Request: " + reasonText(cause)
}

// headerName is the name of a header field for a reason phrase: the long
// form of a compact one, at most 32 token characters.
func headerName(name []byte) string {
	if len(name) == 1 {
		if long := compactForm(name[0] | 0x20); long != "" {
			return long
		}
	}
	if len(name) > 32 || !isToken(name) {
		return "header field"
	}
	return string(name)
}

// compactForm is the long name of the compact header name c (lower case),
// "" for none.
func compactForm(c byte) string {
	switch c {
	case 'c':
		return "Content-Type"
	case 'e':
		return "Content-Encoding"
	case 'f':
		return "From"
	case 'i':
		return "Call-ID"
	case 'k':
		return "Supported"
	case 'l':
		return "Content-Length"
	case 'm':
		return "Contact"
	case 'o':
		return "Event"
	case 'r':
		return "Refer-To"
	case 's':
		return "Subject"
	case 't':
		return "To"
	case 'v':
		return "Via"
	}
	return ""
}

// isScheme reports whether s is a URI scheme (RFC 3986 3.1).
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// reasonText makes an error text fit a reason phrase: printable ASCII,
// without quotes, at most 60 bytes.
func reasonText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 60; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\'' {
			c = ' '
		}
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}
