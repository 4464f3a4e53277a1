package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// sipgo's UDP transport drops a datagram it cannot parse: it logs "failed
// to parse" with the data, from the goroutine that read the datagram, and
// reads the next one. The log record has no address. So the read filter
// remembers, for each UDP socket, where its last datagram came from and a
// fingerprint of its bytes (an atomic store or two, no copy); the "failed
// to parse" record, seen by quietHandler, finds the socket whose last
// datagram it is, and the request gets its 400 from there.

// datagramWatch is the last datagram one UDP socket handed to sipgo.
type datagramWatch struct {
	e     *Engine
	local *net.UDPAddr  // the socket's address, as the socket returns it (compared by pointer)
	sum   atomic.Uint64 // the datagram's fingerprint
	from  atomic.Pointer[net.UDPAddr]
}

// maxWatches bounds the watched sockets; when a new one comes, the oldest
// (a closed socket, usually) is forgotten.
const maxWatches = 64

var watches struct {
	mu   sync.Mutex // held to add a watch
	list atomic.Pointer[[]*datagramWatch]
}

// sawDatagram records data, about to be parsed by sipgo, as the last
// datagram of the socket local.
func (e *Engine) sawDatagram(local, from net.Addr, data []byte) {
	l, ok1 := local.(*net.UDPAddr)
	f, ok2 := from.(*net.UDPAddr)
	if !ok1 || !ok2 {
		return
	}
	w := e.watch(l)
	if last := w.from.Load(); last == nil || last.Port != f.Port || !last.IP.Equal(f.IP) {
		w.from.Store(f)
	}
	w.sum.Store(fingerprint(data))
}

// watch returns the watch of the socket local.
func (e *Engine) watch(local *net.UDPAddr) *datagramWatch {
	if l := watches.list.Load(); l != nil {
		for _, w := range *l {
			if w.local == local && w.e == e {
				return w
			}
		}
	}
	watches.mu.Lock()
	defer watches.mu.Unlock()
	var list []*datagramWatch
	if l := watches.list.Load(); l != nil {
		list = *l
	}
	for _, w := range list {
		if w.local == local && w.e == e {
			return w
		}
	}
	w := &datagramWatch{e: e, local: local}
	if len(list) >= maxWatches {
		list = list[1:]
	}
	list = append(append([]*datagramWatch(nil), list...), w)
	watches.list.Store(&list)
	return w
}

// fingerprint identifies a datagram among the last ones of each socket:
// its length and four 8-byte words (first, last, at a quarter and at the
// middle). A few nanoseconds, whatever the length.
func fingerprint(data []byte) uint64 {
	n := len(data)
	if n < 16 {
		var b [16]byte
		copy(b[:], data)
		data = b[:]
	}
	f := uint64(n) * 0x9e3779b97f4a7c15
	for i, at := range [4]int{0, len(data) - 8, len(data) / 4, len(data) / 2} {
		f ^= bits.RotateLeft64(binary.LittleEndian.Uint64(data[at:at+8]), 16*i)
		f *= 0xbf58476d1ce4e5b9
	}
	return f
}

// answerUnparsable answers the datagram data, which sipgo could not parse
// for cause, from the socket that received it (see badRequest).
func answerUnparsable(text, cause string) {
	data := []byte(text)
	w, from := findWatch(data)
	if w == nil {
		return
	}
	w.e.rejectRaw("UDP", w.local, from, data, func(data []byte) (int, string) {
		return badRequest(data, cause)
	})
}

// findWatch returns the socket whose last datagram is data, and where that
// came from. It returns nil when there is none, or when two sockets' last
// datagrams look like data and came from different sources.
func findWatch(data []byte) (*datagramWatch, *net.UDPAddr) {
	l := watches.list.Load()
	if l == nil {
		return nil, nil
	}
	sum := fingerprint(data)
	var match *datagramWatch
	var from *net.UDPAddr
	for _, w := range *l {
		if w.sum.Load() != sum {
			continue
		}
		f := w.from.Load()
		if f == nil || match != nil && f.String() != from.String() {
			return nil, nil
		}
		if match == nil {
			match, from = w, f
		}
	}
	return match, from
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
		if long, ok := compactForms[name[0]|0x20]; ok {
			return long
		}
	}
	if len(name) > 32 || !isToken(name) {
		return "header field"
	}
	return string(name)
}

var compactForms = map[byte]string{
	'c': "Content-Type", 'e': "Content-Encoding", 'f': "From", 'i': "Call-ID", 'k': "Supported",
	'l': "Content-Length", 'm': "Contact", 'o': "Event", 'r': "Refer-To", 's': "Subject", 't': "To", 'v': "Via",
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
