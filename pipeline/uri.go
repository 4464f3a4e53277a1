package pipeline

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// SameURI compares two URIs as RFC 3261 19.1.4 does: scheme and host
// without case, user and password exactly, the port as written (no port is
// not 5060), the transport, user, ttl, method and maddr parameters when
// either has them, other parameters when both have them, every header, and
// an escaped character (%61) as the character itself unless it is a
// reserved one (RFC 2396: ;/?:@&=+$,).
func SameURI(a, b *sip.Uri) bool {
	if !strings.EqualFold(a.Scheme, b.Scheme) || unescaped(a.User) != unescaped(b.User) ||
		unescaped(a.Password) != unescaped(b.Password) || !strings.EqualFold(a.Host, b.Host) ||
		a.Port != b.Port || a.Raw() != b.Raw() {
		return false
	}
	pa, pb := lowerParams(a.UriParams), lowerParams(b.UriParams)
	for _, k := range []string{"transport", "user", "ttl", "method", "maddr"} {
		va, oka := pa[k]
		vb, okb := pb[k]
		if oka != okb || !strings.EqualFold(va, vb) {
			return false
		}
	}
	for k, va := range pa {
		if vb, ok := pb[k]; ok && !strings.EqualFold(va, vb) {
			return false
		}
	}
	ha, hb := lowerParams(a.Headers), lowerParams(b.Headers)
	if len(ha) != len(hb) {
		return false
	}
	for k, va := range ha {
		if vb, ok := hb[k]; !ok || va != vb {
			return false
		}
	}
	return true
}

// lowerParams returns the parameters by lower-case name, their values
// unescaped.
func lowerParams(ps sip.HeaderParams) map[string]string {
	if len(ps) == 0 {
		return nil // the usual case; a nil map reads as empty
	}
	m := make(map[string]string, len(ps))
	for _, kv := range ps {
		m[strings.ToLower(unescaped(kv.K))] = unescaped(kv.V)
	}
	return m
}

// unescaped returns s with each %XX of a character that is not reserved
// replaced by the character, and the hex digits of the others in upper
// case, so that two spellings of one URI part compare equal.
func unescaped(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c := unhex(s[i+1])<<4 | unhex(s[i+2])
			if strings.IndexByte(";/?:@&=+$,", c) >= 0 {
				b.WriteString(strings.ToUpper(s[i : i+3]))
			} else {
				b.WriteByte(c)
			}
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
