package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// managed are the headers the proxy keeps itself, by canonical name: a
// transaction and a dialog are identified by them, the body is framed by
// Content-Length, and loop protection counts on Max-Forwards.
var managed = map[string]string{
	"via":            "Via",
	"from":           "From",
	"to":             "To",
	"call-id":        "Call-ID",
	"cseq":           "CSeq",
	"content-length": "Content-Length",
	"max-forwards":   "Max-Forwards",
}

// compact maps the compact header names (RFC 3261 7.3.3 and the IANA SIP
// header registry) to the full ones, in lower case.
var compact = map[string]string{
	"a": "accept-contact",
	"b": "referred-by",
	"c": "content-type",
	"d": "request-disposition",
	"e": "content-encoding",
	"f": "from",
	"i": "call-id",
	"j": "reject-contact",
	"k": "supported",
	"l": "content-length",
	"m": "contact",
	"n": "identity-info",
	"o": "event",
	"r": "refer-to",
	"s": "subject",
	"t": "to",
	"u": "allow-events",
	"v": "via",
	"x": "session-expires",
	"y": "identity",
}

// canonical returns the form of a header name that names compare in:
// lower case, with a compact name replaced by the full one.
func canonical(name string) string {
	lower := sip.ASCIIToLower(name)
	if full, ok := compact[lower]; ok {
		return full
	}
	return lower
}

// checkName checks that name is a header name (an RFC 3261 token) that the
// stage may change.
func checkName(name string) error {
	if name == "" {
		return errors.New(`"" is not a header name`)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%q is not a header name: %q is not allowed in one (a token: letters, digits and -.!%%*_+`'~)", name, name[i:i+1])
		}
	}
	c := canonical(name)
	if full, ok := managed[c]; ok {
		if !strings.EqualFold(name, full) {
			return fmt.Errorf("%q (%s) is managed by the proxy and cannot be rewritten", name, full)
		}
		return fmt.Errorf("%q is managed by the proxy and cannot be rewritten", name)
	}
	return nil
}

// isTokenChar reports whether c may be in an RFC 3261 token.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// checkText checks that s can be written in a header value or a reason
// phrase: valid UTF-8 without CR, LF, NUL or any other control character
// but tab.
func checkText(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r':
			return errors.New("contains a carriage return (CR), which would end the line")
		case c == '\n':
			return errors.New("contains a line feed (LF), which would end the line")
		case c == 0:
			return errors.New("contains a NUL byte")
		case c < 0x20 && c != '\t', c == 0x7f:
			return fmt.Errorf("contains the control character 0x%02x", c)
		}
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	return nil
}

// makeHeaders checks a value and turns it into headers with sipgo's own
// header parser, so that a header sipgo knows (Contact, Route,
// Content-Type...) is typed as when received and Message.Contact() and the
// like see it; a list value of such a header may give several headers.
// Other headers become sip.NewHeader(name, value).
func makeHeaders(name, value string) ([]sip.Header, error) {
	if err := checkText(value); err != nil {
		return nil, fmt.Errorf("the value %w", err)
	}
	hs, err := sip.HeadersParser(sip.DefaultHeadersParser()).ParseHeader(nil, []byte(name+": "+value))
	if err != nil {
		return nil, fmt.Errorf("the value %q is not a valid %s header: %w", value, name, err)
	}
	if len(hs) == 0 {
		return []sip.Header{sip.NewHeader(name, strings.TrimSpace(value))}, nil
	}
	return hs, nil
}

// headerMessage is what *sip.Request and *sip.Response have in common for
// editing headers.
type headerMessage interface {
	Headers() []sip.Header
	RemoveHeader(name string) bool
	AppendHeader(header sip.Header)
}

// headerList is a message's header list being edited, with the canonical
// name of every header.
type headerList struct {
	headers []sip.Header
	names   []string
}

func newHeaderList(hs []sip.Header) *headerList {
	l := &headerList{headers: make([]sip.Header, len(hs)), names: make([]string, len(hs))}
	copy(l.headers, hs)
	for i, h := range hs {
		l.names[i] = canonical(h.Name())
	}
	return l
}

// remove drops every header named canon and reports whether there was one.
func (l *headerList) remove(canon string) bool {
	_, removed := l.cut(canon)
	return removed
}

// set puts hs where the first header named canon was, and drops the
// others; with none, it appends hs.
func (l *headerList) set(canon string, hs []sip.Header) {
	at, found := l.cut(canon)
	if !found {
		l.add(hs)
		return
	}
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = canonical(h.Name())
	}
	l.headers = append(l.headers[:at], append(hs, l.headers[at:]...)...)
	l.names = append(l.names[:at], append(names, l.names[at:]...)...)
}

// add appends hs.
func (l *headerList) add(hs []sip.Header) {
	for _, h := range hs {
		l.headers = append(l.headers, h)
		l.names = append(l.names, canonical(h.Name()))
	}
}

// cut drops every header named canon. It returns where the first one was,
// and whether there was one.
func (l *headerList) cut(canon string) (int, bool) {
	at := -1
	n := 0
	for i, h := range l.headers {
		if l.names[i] == canon {
			if at < 0 {
				at = n
			}
			continue
		}
		l.headers[n], l.names[n] = h, l.names[i]
		n++
	}
	clear(l.headers[n:])
	l.headers, l.names = l.headers[:n], l.names[:n]
	return at, at >= 0
}

// writeTo makes the list the headers of m. sipgo has no call to set the
// whole list, and its ReplaceHeader and RemoveHeader match names exactly
// and keep its shortcuts to the top Via, Contact and others right only when
// headers go through RemoveHeader and AppendHeader; so every header is
// removed and the list appended, which is how the parser builds a message.
func (l *headerList) writeTo(m headerMessage) {
	old := m.Headers()
	names := make([]string, len(old))
	for i, h := range old {
		names[i] = h.Name()
	}
	for _, name := range names {
		m.RemoveHeader(name)
	}
	for _, h := range l.headers {
		m.AppendHeader(h)
	}
}
