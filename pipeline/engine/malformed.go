package engine

import (
	"bytes"
	"strings"
)

// rawRequest is what a lenient reading of a request finds in its start line
// and header section, for a request sipgo cannot parse (or should not, being
// too large): enough to answer it. Values are unfolded and trimmed, and
// their control characters are replaced by spaces.
type rawRequest struct {
	method, uri string
	// vias are the Via header fields, one entry for each (an entry may
	// hold several comma-separated values), top first; topVia is the first
	// one's value as it is in the data (folded lines and all).
	vias                   []string
	topVia                 []byte
	from, to, callID, cseq string
	// contentLength is the Content-Length value, "" without one.
	contentLength string
	// body is where the body starts: after the empty line, or the end of
	// the data when there is none.
	body int
}

// readRawRequest reads data leniently: header names in any case, compact
// forms, folded lines, LF without CR. ok is false for a response, and for
// what has no request line, no Via or no CSeq (there is no one to answer,
// or no way for them to match the answer).
func readRawRequest(data []byte) (r rawRequest, ok bool) {
	line, off := rawLine(data, 0)
	r.method, r.uri, ok = rawRequestLine(line)
	if !ok {
		return r, false
	}
	s := headerScanner{data: data, off: off}
	for {
		name, value, more := s.next()
		if !more {
			break
		}
		switch {
		case headerIs(name, "via", "v"):
			if r.vias == nil {
				r.topVia = value
			}
			r.vias = append(r.vias, rawValue(value))
		case headerIs(name, "from", "f"):
			r.from = rawValue(value)
		case headerIs(name, "to", "t"):
			r.to = rawValue(value)
		case headerIs(name, "call-id", "i"):
			r.callID = rawValue(value)
		case headerIs(name, "cseq", ""):
			r.cseq = rawValue(value)
		case headerIs(name, "content-length", "l"):
			r.contentLength = rawValue(value)
		}
	}
	r.body = s.off
	return r, len(r.vias) > 0 && r.cseq != ""
}

// rawRequestLine splits a request line leniently (runs of spaces, a
// trailing space): the method and the Request-URI. ok is false for a
// status line and for a line that does not start with a method token.
func rawRequestLine(line []byte) (method, uri string, ok bool) {
	if bytes.HasPrefix(line, []byte("SIP/")) {
		return "", "", false
	}
	fields := bytes.Fields(line)
	if len(fields) < 2 || !isToken(fields[0]) {
		return "", "", false
	}
	return string(fields[0]), rawValue(fields[1]), true
}

// headerScanner walks the header fields of a message.
type headerScanner struct {
	data []byte
	off  int // the start of the next line; after the last field, of the body
}

// next returns the next header field: its name, and its value with the
// folded lines that continue it (CRLF and all). more is false at the empty
// line that ends the header section, or at the end of the data.
func (s *headerScanner) next() (name, value []byte, more bool) {
	line, off := rawLine(s.data, s.off)
	if len(line) == 0 {
		s.off = off
		return nil, nil, false
	}
	start := s.off
	end := start + len(line)
	for off < len(s.data) && (s.data[off] == ' ' || s.data[off] == '\t') {
		cont, next := rawLine(s.data, off)
		end = off + len(cont)
		off = next
	}
	s.off = off
	field := s.data[start:end]
	colon := bytes.IndexByte(field, ':')
	if colon < 0 {
		return field, nil, true
	}
	return bytes.TrimRight(field[:colon], " \t"), field[colon+1:], true
}

// rawLine returns the line that starts at off, without its line ending,
// and where the next one starts.
func rawLine(data []byte, off int) (line []byte, next int) {
	if off >= len(data) {
		return nil, len(data)
	}
	rest := data[off:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return bytes.TrimSuffix(rest, []byte("\r")), len(data)
	}
	return bytes.TrimSuffix(rest[:i], []byte("\r")), off + i + 1
}

// headerIs reports whether name is the long or the compact (when not "")
// name of a header field, in any case.
func headerIs(name []byte, long, compact string) bool {
	return bytes.EqualFold(name, []byte(long)) || (compact != "" && bytes.EqualFold(name, []byte(compact)))
}

// rawValue unfolds a header value (each run of white space and line
// breaks becomes one space), trims it, and replaces control characters
// with spaces, so that it can be written in a header of our own.
func rawValue(value []byte) string {
	var b strings.Builder
	b.Grow(len(value))
	space := false
	for _, c := range value {
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		if c == ' ' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	return b.String()
}

// isToken reports whether b is a non-empty RFC 3261 token (a method name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// rawParam returns the value of the parameter name of a header value
// (";name=value", any case, white space around ";" and "="), outside
// quoted strings and <>, without the quotes of a quoted value.
func rawParam(value, name string) (string, bool) {
	depth, quoted := 0, false
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			return "", false // the next value
		case c == ';' && depth == 0:
			rest := strings.TrimLeft(value[i+1:], " \t")
			if len(rest) < len(name) || !strings.EqualFold(rest[:len(name)], name) {
				continue
			}
			rest = strings.TrimLeft(rest[len(name):], " \t")
			if rest == "" || rest[0] == ';' || rest[0] == ',' {
				return "", true
			}
			if rest[0] != '=' {
				continue
			}
			rest = strings.TrimLeft(rest[1:], " \t")
			if strings.HasPrefix(rest, `"`) {
				if end := strings.IndexByte(rest[1:], '"'); end >= 0 {
					return strings.TrimSpace(rest[1 : end+1]), true
				}
			}
			end := strings.IndexAny(rest, ";, \t")
			if end < 0 {
				end = len(rest)
			}
			return rest[:end], true
		}
	}
	return "", false
}
