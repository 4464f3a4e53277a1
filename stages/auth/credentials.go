package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Limits of the credentials parser: a header past them is refused, so that
// a hostile one costs little.
const (
	maxCredentialsLen    = 4096
	maxCredentialsParams = 32
)

// credentials are the parsed value of an Authorization or
// Proxy-Authorization header (RFC 3261 25.1, RFC 7616 3.4):
//
//	Digest username="alice", realm="example.org", nonce="...", uri="sip:example.org",
//	       response="...", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="..."
type credentials struct {
	// Scheme is the auth scheme as written ("Digest").
	Scheme string
	// Params are the auth-params by lower-case name, with quoted strings
	// unquoted and their escapes undone.
	Params map[string]string
}

// param returns the value of a parameter, "" when absent.
func (c credentials) param(name string) string { return c.Params[name] }

// parseCredentials parses the value of an Authorization or
// Proxy-Authorization header: an auth scheme, then comma-separated
// name=value parameters whose values are tokens or quoted strings (with
// backslash escapes; commas and equal signs inside quotes are text). Empty
// list elements (", ,") are allowed, as in every SIP list. A parameter
// given twice, a value that is neither a token nor a quoted string, an
// unterminated quoted string, or a header over maxCredentialsLen bytes or
// maxCredentialsParams parameters is an error. It never panics.
func parseCredentials(s string) (credentials, error) {
	if len(s) > maxCredentialsLen {
		return credentials{}, fmt.Errorf("longer than %d bytes", maxCredentialsLen)
	}
	p := &lexer{s: s}
	p.skipSpace()
	scheme := p.token()
	if scheme == "" {
		return credentials{}, errors.New("no auth scheme")
	}
	c := credentials{Scheme: scheme, Params: map[string]string{}}
	if !p.done() && !p.skipSpace() {
		return credentials{}, fmt.Errorf("%q after the scheme", p.rest())
	}
	for {
		p.skipSpace()
		if p.done() {
			return c, nil
		}
		if p.peek() == ',' {
			p.pos++
			continue
		}
		name := strings.ToLower(p.token())
		if name == "" {
			return credentials{}, fmt.Errorf("%q is not a parameter", p.rest())
		}
		p.skipSpace()
		if p.done() || p.peek() != '=' {
			return credentials{}, fmt.Errorf("parameter %q has no value", name)
		}
		p.pos++
		p.skipSpace()
		var value string
		if !p.done() && p.peek() == '"' {
			v, err := p.quoted()
			if err != nil {
				return credentials{}, fmt.Errorf("parameter %q: %w", name, err)
			}
			value = v
		} else if value = p.bare(); value == "" {
			return credentials{}, fmt.Errorf("parameter %q has no value", name)
		}
		if _, dup := c.Params[name]; dup {
			return credentials{}, fmt.Errorf("parameter %q is given twice", name)
		}
		if len(c.Params) == maxCredentialsParams {
			return credentials{}, fmt.Errorf("more than %d parameters", maxCredentialsParams)
		}
		c.Params[name] = value
		p.skipSpace()
		if p.done() {
			return c, nil
		}
		if p.peek() != ',' {
			return credentials{}, fmt.Errorf("%q after parameter %q: want a comma", p.rest(), name)
		}
		p.pos++
	}
}

// lexer reads a header value from left to right.
type lexer struct {
	s   string
	pos int
}

func (p *lexer) done() bool   { return p.pos >= len(p.s) }
func (p *lexer) peek() byte   { return p.s[p.pos] }
func (p *lexer) rest() string { return p.s[p.pos:] }

// skipSpace skips linear white space and reports whether there was some.
func (p *lexer) skipSpace() bool {
	start := p.pos
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == '\r' || p.peek() == '\n') {
		p.pos++
	}
	return p.pos > start
}

// token reads a token (RFC 3261 25.1), "" when there is none.
func (p *lexer) token() string {
	start := p.pos
	for !p.done() && isTokenChar(p.peek()) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// bare reads an unquoted value: a token (RFC 3261 25.1), or more, since
// clients write uri=sip:bob@example.org unquoted too. It ends at a comma,
// white space or a quote.
func (p *lexer) bare() string {
	start := p.pos
	for !p.done() && strings.IndexByte(", \t\r\n\"", p.peek()) < 0 {
		p.pos++
	}
	return p.s[start:p.pos]
}

// quoted reads a quoted string, the opening quote first, and returns its
// text with the escapes undone.
func (p *lexer) quoted() (string, error) {
	p.pos++ // the opening quote
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.done() {
				return "", errors.New("unterminated quoted string")
			}
			b.WriteByte(p.peek())
			p.pos++
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated quoted string")
}

// isTokenChar reports whether c may appear in a token: alphanumerics and
// -.!%*_+`'~ (RFC 3261 25.1).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// quote returns s as a quoted string, escaping quotes and backslashes.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
