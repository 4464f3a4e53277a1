package capture

import (
	"bytes"
	"strconv"
)

// maxPartial bounds what a Framer keeps of one connection's unfinished
// message, and maxConns the connections it keeps one for: the capture must
// not grow with a peer that never finishes a message.
const (
	maxPartial = 65535 + 4096
	maxConns   = 4096
)

// Framer cuts the reads of stream connections into whole SIP messages
// (RFC 3261 18.3: the header ends at a blank line, and Content-Length
// gives the body's size). sipgo reports what each TCP read returned, which
// may hold part of a message or several. A Framer is used by one
// goroutine.
type Framer struct {
	partial map[string][]byte
}

// Frames adds data, read from the connection conn names, and returns the
// messages it completed. Keep-alives (CRLF) between messages are skipped.
func (f *Framer) Frames(conn string, data []byte) [][]byte {
	buf := append(f.partial[conn], data...)
	var out [][]byte
	for {
		buf = bytes.TrimLeft(buf, "\r\n")
		line := bytes.Index(buf, []byte("\r\n"))
		if line < 0 {
			break
		}
		if !startLine(buf[:line]) {
			buf = buf[line+2:] // what follows lost reads: find the next message
			continue
		}
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			break
		}
		total := end + 4 + contentLength(buf[:end+2])
		if len(buf) < total {
			break
		}
		out = append(out, bytes.Clone(buf[:total]))
		buf = buf[total:]
	}
	switch {
	case len(buf) == 0 || len(buf) > maxPartial:
		delete(f.partial, conn)
	default:
		if f.partial == nil || len(f.partial) >= maxConns {
			f.partial = map[string][]byte{}
		}
		f.partial[conn] = bytes.Clone(buf)
	}
	return out
}

// Reset forgets every unfinished message: after reads were lost, what is
// kept would be joined to the wrong bytes.
func (f *Framer) Reset() { f.partial = nil }

// startLine reports whether line is a SIP request or status line: a
// method, a Request-URI and SIP/2.0, or SIP/2.0 and a code.
func startLine(line []byte) bool {
	if bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		return true
	}
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(method) == 0 || !bytes.HasSuffix(rest, []byte(" SIP/2.0")) || bytes.Count(rest, []byte(" ")) != 1 {
		return false
	}
	for _, c := range method {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte("()<>@,;:\\\"/[]?={}"), c) >= 0 {
			return false
		}
	}
	return true
}

// contentLength returns the Content-Length (or l) of a header block, 0
// when it has none or it does not parse.
func contentLength(head []byte) int {
	v := header(head, "content-length", "l")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// CallID returns the Call-ID (or i) of a message, "" when it has none.
func CallID(msg []byte) string {
	if end := bytes.Index(msg, []byte("\r\n\r\n")); end >= 0 {
		msg = msg[:end+2]
	}
	return header(msg, "call-id", "i")
}

// header returns the value of the first header named name (or its compact
// form) in a header block, trimmed.
func header(head []byte, name, compact string) string {
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		key := bytes.TrimSpace(line[:colon])
		if bytes.EqualFold(key, []byte(name)) || bytes.EqualFold(key, []byte(compact)) {
			return string(bytes.TrimSpace(line[colon+1:]))
		}
	}
	return ""
}
