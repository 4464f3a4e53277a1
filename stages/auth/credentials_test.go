package auth

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		in     string
		scheme string
		params map[string]string
		err    string
	}{
		// 0-1: RFC 3261 22.4 and RFC 8760 examples, as phones write them.
		{
			in:     `Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			scheme: "Digest",
			params: map[string]string{"username": "bob", "realm": "biloxi.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "uri": "sip:bob@biloxi.com", "qop": "auth", "nc": "00000001", "cnonce": "0a4f113b", "response": "6629fae49393a05397450978507c4ef1", "opaque": "5ccc069c403ebaf9f0171e9517f40e41"},
		},
		{
			in:     "digest  USERNAME = \"alice\" ,\tRealm=\"example.org\",algorithm=SHA-256,qop=\"auth\"",
			scheme: "digest",
			params: map[string]string{"username": "alice", "realm": "example.org", "algorithm": "SHA-256", "qop": "auth"},
		},
		// 2-4: commas, equal signs and escaped quotes inside quotes.
		{in: `Digest realm="a, b=c", username="x\"y\\z"`, scheme: "Digest", params: map[string]string{"realm": "a, b=c", "username": `x"y\z`}},
		{in: `Digest uri="sip:a@b;transport=tcp,x"`, scheme: "Digest", params: map[string]string{"uri": "sip:a@b;transport=tcp,x"}},
		{in: `Digest username=""`, scheme: "Digest", params: map[string]string{"username": ""}},
		// 5-6: empty list elements, a bare scheme, trailing commas.
		{in: `Digest , ,username="a",, realm=b ,`, scheme: "Digest", params: map[string]string{"username": "a", "realm": "b"}},
		{in: "Digest", scheme: "Digest", params: map[string]string{}},
		// 7-8: an unquoted uri, and unquoted values that are not tokens.
		{in: `Digest uri=sip:bob@example.org`, scheme: "Digest", params: map[string]string{"uri": "sip:bob@example.org"}},
		{in: `Digest uri=sip:bob@example.org:5060,response=a\b`, scheme: "Digest", params: map[string]string{"uri": "sip:bob@example.org:5060", "response": `a\b`}},
		// 9-: mistakes.
		{in: "", err: "no auth scheme"},
		{in: `"Digest"`, err: "no auth scheme"},
		{in: `Digest realm="abc`, err: `parameter "realm": unterminated quoted string`},
		{in: `Digest realm="abc\`, err: "unterminated"},
		{in: `Digest realm`, err: `parameter "realm" has no value`},
		{in: `Digest realm=`, err: `parameter "realm" has no value`},
		{in: `Digest realm=,`, err: `parameter "realm" has no value`},
		{in: `Digest realm="a" "b"`, err: `after parameter "realm": want a comma`},
		{in: `Digest realm=a b`, err: `after parameter "realm": want a comma`},
		{in: `Digest realm="a", REALM="b"`, err: `parameter "realm" is given twice`},
		{in: `Digest ="a"`, err: "is not a parameter"},
		{in: `Digest=x`, err: "after the scheme"},
		{in: `Basic YWxpY2U6c2VjcmV0`, err: `parameter "ywxpy2u6c2vjcmv0" has no value`},
		{in: "Digest " + manyParams(33), err: "more than 32 parameters"},
		{in: "Digest " + manyParams(32), scheme: "Digest", params: manyParamsMap(32)},
		{in: "Digest a=\"" + strings.Repeat("x", 5000) + "\"", err: "longer than 4096 bytes"},
	}
	for i, tc := range tests {
		c, err := parseCredentials(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("test %d: %q: error %v, want %q", i, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %q: %v", i, tc.in, err)
			continue
		}
		if c.Scheme != tc.scheme || !maps.Equal(c.Params, tc.params) {
			t.Errorf("test %d: %q: %q %q, want %q %q", i, tc.in, c.Scheme, c.Params, tc.scheme, tc.params)
		}
	}
}

// manyParams returns n parameters, p0=v, p1=v, ...
func manyParams(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "p" + strconv.Itoa(i) + "=v"
	}
	return strings.Join(parts, ", ")
}

// manyParamsMap returns what manyParams(n) parses to.
func manyParamsMap(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m["p"+strconv.Itoa(i)] = "v"
	}
	return m
}

// format writes credentials back as a header value, quoting every value.
func format(c credentials) string {
	names := slices.Sorted(maps.Keys(c.Params))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + quote(c.Params[n])
	}
	return c.Scheme + " " + strings.Join(parts, ", ")
}

// FuzzParseCredentials checks that the parser never panics, and that what
// it parses, written back with every value quoted, parses to the same.
func FuzzParseCredentials(f *testing.F) {
	for _, seed := range []string{
		`Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
		`Digest username="alice", realm="example.org", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uri="sip:example.org", response="d1659fff7a501be15962adc35514ca6a5868905695f2dd1093741f931e000a1f", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="x"`,
		`Digest realm="a, b=c", username="x\"y\\z"`,
		`digest , ,username="a",, realm=b ,`,
		`Digest uri=sip:bob@example.org:5060`,
		`Digest realm="abc\`,
		`Digest realm="a" "b"`,
		`Basic YWxpY2U6c2VjcmV0`,
		"Digest\tusername=\"\xff\xfe\"",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCredentials(s)
		if err != nil {
			return
		}
		if c.Scheme == "" {
			t.Fatalf("%q: parsed with no scheme", s)
		}
		again, err := parseCredentials(format(c))
		if err != nil {
			if len(format(c)) > maxCredentialsLen {
				return // quoting made it longer than the limit
			}
			t.Fatalf("%q: parsed to %q %q, which written back as %q does not parse: %v", s, c.Scheme, c.Params, format(c), err)
		}
		if again.Scheme != c.Scheme || !maps.Equal(again.Params, c.Params) {
			t.Fatalf("%q: parsed to %q %q, then to %q %q", s, c.Scheme, c.Params, again.Scheme, again.Params)
		}
	})
}
