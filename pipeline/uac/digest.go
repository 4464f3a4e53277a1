package uac

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

var _ pipeline.Credentials = (*Accounts)(nil)

// Challenge is one digest challenge of a WWW-Authenticate or
// Proxy-Authenticate header (RFC 7616 3.3).
type Challenge struct {
	Realm, Nonce, Opaque, Algorithm string
	// QOP lists the qop values offered; empty for an RFC 2069 challenge.
	QOP []string
}

// ParseChallenge reads a header value `Digest realm="...", nonce="...",
// ...`; false when it is not a digest challenge or has no nonce.
func ParseChallenge(value string) (Challenge, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(value), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return Challenge{}, false
	}
	var c Challenge
	for rest = strings.TrimSpace(rest); rest != ""; {
		name, v, tail, ok := param(rest)
		if !ok {
			return Challenge{}, false
		}
		switch strings.ToLower(name) {
		case "realm":
			c.Realm = v
		case "nonce":
			c.Nonce = v
		case "opaque":
			c.Opaque = v
		case "algorithm":
			c.Algorithm = v
		case "qop":
			for _, q := range strings.Split(v, ",") {
				c.QOP = append(c.QOP, strings.ToLower(strings.TrimSpace(q)))
			}
		}
		rest = strings.TrimLeft(tail, " \t,")
	}
	return c, c.Nonce != ""
}

// param reads one `name=value` or `name="quoted value"` off s, and
// returns what follows it.
func param(s string) (name, value, rest string, ok bool) {
	name, s, ok = strings.Cut(s, "=")
	if !ok {
		return "", "", "", false
	}
	name, s = strings.TrimSpace(name), strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, `"`) {
		value, rest, _ = strings.Cut(s, ",")
		return name, strings.TrimSpace(value), rest, true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return name, b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", "", false
}

// algorithms are the digest algorithms the proxy answers with, most
// preferred first (RFC 8760 2.4). MD5 is also the challenge without one.
var algorithms = []struct {
	name string
	new  func() hash.Hash
	ha1  func(Account) string
}{
	{"SHA-256", sha256.New, func(a Account) string { return a.SHA256 }},
	{"MD5", md5.New, func(a Account) string { return a.MD5 }},
}

// Authorize answers the digest challenge of res (401 or 407) to req as
// the proxy sent it: the challenge of the most preferred algorithm for
// which the realm's account has a hash, with qop=auth when the challenge
// offers it (RFC 7616 3.4), the RFC 2069 digest when it offers no qop.
// It implements pipeline.Credentials.
func (a *Accounts) Authorize(req *sip.Request, res *sip.Response) (sip.Header, bool) {
	from, to := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		from, to = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var challenges []Challenge
	for _, h := range res.GetHeaders(from) {
		if c, ok := ParseChallenge(h.Value()); ok {
			challenges = append(challenges, c)
		}
	}
	for _, alg := range algorithms {
		for _, c := range challenges {
			acc, ok := a.Account(c.Realm)
			if !ok || alg.ha1(acc) == "" || !strings.EqualFold(orMD5(c.Algorithm), alg.name) {
				continue
			}
			value, ok := answer(c, acc, alg.ha1(acc), alg.new, string(req.Method), req.Recipient.String())
			if ok {
				return sip.NewHeader(to, value), true
			}
		}
	}
	return nil, false
}

func orMD5(alg string) string {
	if alg == "" {
		return "MD5"
	}
	return alg
}

// answer writes the credentials for challenge c, or false when it asks
// only for a qop the proxy does not do (auth-int).
func answer(c Challenge, acc Account, ha1 string, h func() hash.Hash, method, uri string) (string, bool) {
	sum := func(parts ...string) string {
		d := h()
		d.Write([]byte(strings.Join(parts, ":")))
		return hex.EncodeToString(d.Sum(nil))
	}
	ha2 := sum(method, uri)
	var b strings.Builder
	b.WriteString("Digest username=" + quote(acc.User) + ", realm=" + quote(c.Realm) + ", nonce=" + quote(c.Nonce) + ", uri=" + quote(uri))
	switch {
	case len(c.QOP) == 0:
		b.WriteString(", response=" + quote(sum(ha1, c.Nonce, ha2)))
	case slices.Contains(c.QOP, "auth"):
		cnonce := randomHex(12) // fresh for each answer: nc is always 1
		const nc = "00000001"
		b.WriteString(", response=" + quote(sum(ha1, c.Nonce, nc, cnonce, "auth", ha2)))
		b.WriteString(", cnonce=" + quote(cnonce) + ", qop=auth, nc=" + nc)
	default:
		return "", false
	}
	if c.Algorithm != "" {
		b.WriteString(", algorithm=" + c.Algorithm)
	}
	if c.Opaque != "" {
		b.WriteString(", opaque=" + quote(c.Opaque))
	}
	return b.String(), true
}

// quote writes s as a quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
