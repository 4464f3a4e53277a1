package registrar

import "strings"

// tokenChars are the characters of an RFC 3261 token, and those a host
// adds to a generic-param's value (":" and the brackets of IPv6).
const tokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~:[]"

// validParam reports whether a Contact parameter is what RFC 3261 25.1
// allows (generic-param: token [ "=" ( token / host / quoted-string ) ]):
// the registrar echoes parameters in its 200, which must parse back.
func validParam(name, value string) bool {
	if name == "" || strings.Trim(name, tokenChars) != "" || strings.ContainsAny(name, ":[]") {
		return false
	}
	if strings.HasPrefix(value, `"`) {
		return quotedString(value)
	}
	return strings.Trim(value, tokenChars) == ""
}

// quotedString reports whether s is one quoted-string: its quotes at both
// ends and nowhere else unless escaped with a backslash.
func quotedString(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		switch s[i] {
		case '\\':
			i++ // the quoted-pair's character
			if i >= len(s)-1 {
				return false
			}
		case '"', '\r', '\n':
			return false
		}
	}
	return true
}
