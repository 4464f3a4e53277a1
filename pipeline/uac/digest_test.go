package uac

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func hexSum(h func() hash.Hash, s string) string {
	d := h()
	d.Write([]byte(s))
	return hex.EncodeToString(d.Sum(nil))
}

// credentialsParams reads the name=value pairs of a credentials header.
func credentialsParams(t *testing.T, value string) map[string]string {
	t.Helper()
	c, ok := strings.CutPrefix(value, "Digest ")
	if !ok {
		t.Fatalf("not digest credentials: %q", value)
	}
	out := map[string]string{}
	for c = strings.TrimSpace(c); c != ""; {
		name, v, rest, ok := param(c)
		if !ok {
			t.Fatalf("credentials do not parse at %q", c)
		}
		out[name] = v
		c = strings.TrimLeft(rest, " ,")
	}
	return out
}

func TestAuthorize(t *testing.T) {
	const user, realm, password = "4021234567", "sip.example.net", "Circle Of Life"
	md5HA1 := hexSum(md5.New, user+":"+realm+":"+password)
	shaHA1 := hexSum(sha256.New, user+":"+realm+":"+password)
	accounts, err := ParseAccounts("# trunk\n"+user+":"+realm+":"+md5HA1+":"+shaHA1+"\nother:elsewhere:-:"+shaHA1+"\n", "creds.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		code       int
		challenges []string
		header     string // "" for none
		alg        func() hash.Hash
		qop        bool
	}{
		{407, []string{`Digest realm="sip.example.net", nonce="n1", qop="auth", algorithm=MD5, opaque="o"`}, "Proxy-Authorization", md5.New, true},
		{401, []string{`Digest realm="sip.example.net", nonce="n2", qop="auth,auth-int", algorithm=MD5`, `Digest realm="sip.example.net", nonce="n2", qop="auth", algorithm=SHA-256`}, "Authorization", sha256.New, true},
		{401, []string{`Digest realm="sip.example.net",nonce="n3"`}, "Authorization", md5.New, false},
		{407, []string{`Digest realm="elsewhere", nonce="n4", algorithm=MD5`}, "", nil, false},               // that account has no MD5 hash
		{407, []string{`Digest realm="unknown", nonce="n5", qop="auth"`}, "", nil, false},                    // no account in the realm
		{407, []string{`Digest realm="sip.example.net", nonce="n6", qop="auth-int"`}, "", nil, false},        // auth-int only
		{407, []string{`Basic realm="sip.example.net"`}, "", nil, false},                                     // not digest
		{401, []string{`Digest realm="sip.example.net", nonce="n8", algorithm=SHA-512-256`}, "", nil, false}, // unsupported algorithm
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "0900", Host: "sip.example.net"})
	for i, tc := range tests {
		res := sip.NewResponseFromRequest(req, tc.code, "Challenge", nil)
		name := "WWW-Authenticate"
		if tc.code == 407 {
			name = "Proxy-Authenticate"
		}
		for _, c := range tc.challenges {
			res.AppendHeader(sip.NewHeader(name, c))
		}
		h, ok := accounts.Authorize(req, res)
		if tc.header == "" {
			if ok {
				t.Errorf("test %d: answered with %s", i, h.Value())
			}
			continue
		}
		if !ok || h.Name() != tc.header {
			t.Errorf("test %d: got %v, %v; want a %s", i, h, ok, tc.header)
			continue
		}
		p := credentialsParams(t, h.Value())
		ha1 := hexSum(tc.alg, user+":"+realm+":"+password)
		ha2 := hexSum(tc.alg, "INVITE:sip:0900@sip.example.net")
		want := hexSum(tc.alg, ha1+":"+p["nonce"]+":"+ha2)
		if tc.qop {
			if p["qop"] != "auth" || p["nc"] != "00000001" || p["cnonce"] == "" {
				t.Errorf("test %d: qop %q nc %q cnonce %q", i, p["qop"], p["nc"], p["cnonce"])
			}
			want = hexSum(tc.alg, ha1+":"+p["nonce"]+":00000001:"+p["cnonce"]+":auth:"+ha2)
		}
		if p["response"] != want || p["username"] != user || p["realm"] != realm || p["uri"] != "sip:0900@sip.example.net" {
			t.Errorf("test %d: credentials %q, want response %s", i, h.Value(), want)
		}
		if strings.Contains(tc.challenges[0], "opaque") && p["opaque"] != "o" {
			t.Errorf("test %d: opaque %q not echoed", i, p["opaque"])
		}
	}
}

func TestParseAccountsErrors(t *testing.T) {
	md5 := strings.Repeat("a", 32)
	tests := []struct {
		data string
		want string // "" for none
	}{
		{"u:r:" + md5 + ":-\n", ""},
		{"", "creds.txt: no account"},
		{"u:r:" + md5 + "\n", "creds.txt:1: 3 fields, want 4"},
		{"u:r:xyz:-\n", `creds.txt:1: user "u": the MD5 hash "xyz" is not 32 hex digits`},
		{"u:r:-:-\n", `creds.txt:1: user "u" has no hash`},
		{"u:r:" + md5 + ":-\nv:r:" + md5 + ":-\n", `creds.txt:2: realm "r" already has an account on line 1`},
		{":r:" + md5 + ":-\n", "creds.txt:1: the user name is empty"},
		{"u::" + md5 + ":-\n", "creds.txt:1: the realm is empty"},
	}
	for i, tc := range tests {
		_, err := ParseAccounts(tc.data, "creds.txt")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("test %d: error %v, want %q", i, err, tc.want)
		}
	}
}
