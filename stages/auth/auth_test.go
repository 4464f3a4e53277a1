package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	"github.com/switchboard-sip/switchboard/stages/ratelimit"
)

// keys configure the stage over testdata/users.txt: alice ("secret", both
// hashes), bob ("bobpass", MD5 only), carol ("carolpass", SHA-256 only), pbx
// ("pbxpass", SHA-256 only).
const keys = `realm = "example.org"
users = "users.txt"`

// t0 is when the tests' challenges are made.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// source is where the tests' requests come from.
var source = netip.MustParseAddr("192.0.2.10")

func harness(t *testing.T, extra string, opts ...stagetest.Option) *stagetest.Harness {
	t.Helper()
	opts = append([]stagetest.Option{stagetest.WithConfigPath("testdata/config.toml"), stagetest.WithTime(func() time.Time { return t0 })}, opts...)
	return stagetest.Stage(t, "auth", keys+"\n"+extra, opts...)
}

// request returns a REGISTER for sip:to@example.org, or an INVITE from
// alice to bob, with the given credentials headers ("Name: value").
func request(method, to string, headers ...string) string {
	ruri, toURI, from := "sip:bob@example.org", "sip:bob@example.org", "sip:alice@example.org"
	if method == "REGISTER" {
		ruri, toURI, from = "sip:example.org", "sip:"+to+"@example.org", "sip:"+to+"@example.org"
	}
	raw := method + " " + ruri + ` SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <` + from + `>;tag=1928301774
To: <` + toURI + `>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 2 ` + method + `
Contact: <sip:alice@192.0.2.10:5060>
`
	for _, h := range headers {
		raw += h + "\n"
	}
	return raw
}

// challengeParams are the parameters of a challenge, by name.
var challengeParam = regexp.MustCompile(`([a-z]+)=("[^"]*"|[^,\s]+)`)

func parseChallenge(t *testing.T, v string) map[string]string {
	t.Helper()
	if !strings.HasPrefix(v, "Digest ") {
		t.Fatalf("challenge %q is not Digest", v)
	}
	out := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(v, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	return out
}

// answer is a client's answer to a challenge.
type answer struct {
	alg      string // "SHA-256", "MD5", or "" for none written (MD5)
	user     string
	password string
	realm    string // "" is example.org
	nc       string // "" is 00000001
	qop      string // "" is auth; "-" leaves it out
	method   string // "" is the request's
	uri      string // "" is the request's
	name     string // the header's name; "" is the one for the method
}

// header returns the credentials header of the answer to a challenge with
// nonce, for a request of method to uri, computed as RFC 7616 3.4.1 says.
func (a answer) header(method, uri, nonce string) string {
	realm, nc, qop, cnonce := or(a.realm, "example.org"), or(a.nc, "00000001"), or(a.qop, "auth"), "0a4f113b"
	name := "Proxy-Authorization"
	if method == "REGISTER" {
		name = "Authorization"
	}
	method, uri = or(a.method, method), or(a.uri, uri)
	var h func() hash.Hash = md5.New
	if a.alg == "SHA-256" {
		h = sha256.New
	}
	H := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := H(a.user + ":" + realm + ":" + a.password)
	response := H(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + H(method+":"+uri))
	v := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`, a.user, realm, nonce, uri, response)
	if a.alg != "" {
		v += ", algorithm=" + a.alg
	}
	if qop != "-" {
		v += ", qop=" + qop + ", nc=" + nc + `, cnonce="` + cnonce + `"`
	}
	return or(a.name, name) + ": " + v
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		keys   string
		method string
		code   int
		header string
		algs   []string
	}{
		{method: "REGISTER", code: 401, header: "WWW-Authenticate", algs: []string{"SHA-256", "MD5"}},
		{method: "INVITE", code: 407, header: "Proxy-Authenticate", algs: []string{"SHA-256", "MD5"}},
		{method: "MESSAGE", code: 407, header: "Proxy-Authenticate", algs: []string{"SHA-256", "MD5"}},
		{keys: `algorithms = ["MD5", "SHA-256"]`, method: "REGISTER", code: 401, header: "WWW-Authenticate", algs: []string{"SHA-256", "MD5"}},
		{keys: `algorithms = ["md5"]`, method: "REGISTER", code: 401, header: "WWW-Authenticate", algs: []string{"MD5"}},
		{keys: `algorithms = ["SHA-256"]`, method: "INVITE", code: 407, header: "Proxy-Authenticate", algs: []string{"SHA-256"}},
	}
	for i, tc := range tests {
		h := harness(t, tc.keys)
		res := h.Request(stagetest.Request(t, request(tc.method, "alice")))
		if res.Err != nil || res.Verdict != pipeline.Replied || res.Code() != tc.code {
			t.Errorf("test %d: %s, want %d", i, res, tc.code)
			continue
		}
		got := res.Headers(tc.header)
		if len(got) != len(tc.algs) {
			t.Errorf("test %d: %d %s headers, want %d:\n%s", i, len(got), tc.header, len(tc.algs), res.Reply)
			continue
		}
		var nonce string
		for j, v := range got {
			p := parseChallenge(t, v)
			if p["realm"] != "example.org" || p["algorithm"] != tc.algs[j] || p["qop"] != "auth" || p["nonce"] == "" || p["stale"] != "" {
				t.Errorf("test %d: challenge %d is %q", i, j, v)
			}
			if !strings.Contains(v, `qop="auth"`) || !strings.Contains(v, `realm="example.org"`) {
				t.Errorf("test %d: challenge %d is %q: want quoted realm and qop", i, j, v)
			}
			if j > 0 && p["nonce"] != nonce {
				t.Errorf("test %d: challenge %d has another nonce", i, j)
			}
			nonce = p["nonce"]
		}
		other := "Proxy-Authenticate"
		if tc.header == other {
			other = "WWW-Authenticate"
		}
		if len(res.Headers(other)) != 0 {
			t.Errorf("test %d: the %d has %s", i, tc.code, other)
		}
		if !res.Changed().Empty() {
			t.Errorf("test %d: the request changed:\n%s", i, res.Changed())
		}
	}
}

func TestCredentials(t *testing.T) {
	alice := answer{alg: "SHA-256", user: "alice", password: "secret"}
	with := func(a answer, f func(*answer)) answer { f(&a); return a }
	tests := []struct {
		name   string
		keys   string
		method string // "" is REGISTER
		to     string // the REGISTER's To user; "" is alice
		answer answer
		// nonce, when set, replaces the challenge's nonce with its result.
		nonce func(challenged string) string
		after time.Duration // from the challenge to the answer
		// before are answers sent first, on the same nonce (nc 1, 2, ...).
		before []string
		code   int  // 0: the request goes on
		stale  bool // the challenge says stale=true
		failed bool // a failure is recorded for the source
	}{
		{name: "SHA-256", answer: alice},
		{name: "MD5", answer: with(alice, func(a *answer) { a.alg = "MD5" })},
		{name: "no algorithm is MD5", answer: with(alice, func(a *answer) { a.alg = "" })},
		{name: "INVITE", method: "INVITE", answer: alice},
		{name: "MD5-only user", answer: answer{alg: "MD5", user: "bob", password: "bobpass"}, to: "bob"},
		{name: "SHA-256-only user", answer: answer{alg: "SHA-256", user: "carol", password: "carolpass"}, to: "carol"},
		{name: "nonce counts grow", answer: with(alice, func(a *answer) { a.nc = "00000003" }), before: []string{"00000001", "00000002"}},
		{name: "just before expiry", answer: alice, after: 5*time.Minute - time.Second},
		{name: "nonce_ttl", keys: `nonce_ttl = "1h"`, answer: alice, after: 59 * time.Minute},

		{name: "wrong password", answer: with(alice, func(a *answer) { a.password = "guess" }), code: 401, failed: true},
		{name: "unknown user", answer: answer{alg: "SHA-256", user: "mallory", password: "secret"}, to: "mallory", code: 401, failed: true},
		{name: "wrong password, INVITE", method: "INVITE", answer: with(alice, func(a *answer) { a.password = "guess" }), code: 407, failed: true},
		{name: "MD5 for an SHA-256-only user", answer: answer{alg: "MD5", user: "carol", password: "carolpass"}, to: "carol", code: 401, failed: true},
		{name: "SHA-256 for an MD5-only user", answer: answer{alg: "SHA-256", user: "bob", password: "bobpass"}, to: "bob", code: 401, failed: true},
		{name: "algorithm not offered", keys: `algorithms = ["SHA-256"]`, answer: with(alice, func(a *answer) { a.alg = "MD5" }), code: 401, failed: true},
		{name: "MD5-sess", answer: with(alice, func(a *answer) { a.alg = "MD5-sess" }), code: 401, failed: true},
		{name: "missing qop", answer: with(alice, func(a *answer) { a.qop = "-" }), code: 401, failed: true},
		{name: "qop auth-int", answer: with(alice, func(a *answer) { a.qop = "auth-int" }), code: 401, failed: true},
		{name: "nc zero", answer: with(alice, func(a *answer) { a.nc = "00000000" }), code: 401, failed: true},
		{name: "nc not 8 digits", answer: with(alice, func(a *answer) { a.nc = "1" }), code: 401, failed: true},
		{name: "digest for another method", answer: with(alice, func(a *answer) { a.method = "INVITE" }), code: 401, failed: true},

		{name: "wrong realm", answer: with(alice, func(a *answer) { a.realm = "example.com"; a.password = "other" }), code: 401},
		{name: "Authorization on INVITE", method: "INVITE", answer: with(alice, func(a *answer) { a.name = "Authorization" }), code: 407},
		{name: "Proxy-Authorization on REGISTER", answer: with(alice, func(a *answer) { a.name = "Proxy-Authorization" }), code: 401},

		{name: "stale nonce", answer: alice, after: 5 * time.Minute, code: 401, stale: true},
		{name: "stale nonce, INVITE", method: "INVITE", answer: alice, after: 6 * time.Minute, code: 407, stale: true},
		{name: "stale nonce, wrong password", answer: with(alice, func(a *answer) { a.password = "guess" }), after: 6 * time.Minute, code: 401, failed: true},
		{name: "nonce from the future", answer: alice, after: -time.Minute, code: 401, stale: true},
		{name: "forged nonce", answer: alice, nonce: func(n string) string { return "x" + n[1:] }, code: 401, stale: true},
		{name: "another server's nonce", answer: alice, nonce: func(string) string { return "dcd98b7102dd2f0e8b11d0f600bfb0c093" }, code: 401, stale: true},
		{name: "replayed nc", answer: alice, before: []string{"00000001"}, code: 401, stale: true},
		{name: "older nc", answer: with(alice, func(a *answer) { a.nc = "00000002" }), before: []string{"00000001", "00000005"}, code: 401, stale: true},

		{name: "someone else's AOR", to: "bob", answer: alice, code: 403},
	}
	for i, tc := range tests {
		h := harness(t, tc.keys)
		method := or(tc.method, "REGISTER")
		to := or(tc.to, "alice")
		first := h.Request(stagetest.Request(t, request(method, to)), stagetest.At(t0))
		if first.Code() != 401 && first.Code() != 407 {
			t.Errorf("test %d (%s): no challenge: %s", i, tc.name, first)
			continue
		}
		nonce := parseChallenge(t, first.Headers(map[bool]string{true: "WWW-Authenticate", false: "Proxy-Authenticate"}[method == "REGISTER"])[0])["nonce"]
		if tc.nonce != nil {
			nonce = tc.nonce(nonce)
		}
		uri := first.Received.Recipient.String()
		for j, nc := range tc.before {
			a := tc.answer
			a.nc = nc
			res := h.Request(stagetest.Request(t, request(method, to, a.header(method, uri, nonce))), stagetest.At(t0.Add(tc.after)))
			if res.Verdict != pipeline.Continue {
				t.Errorf("test %d (%s): answer %d before: %s", i, tc.name, j, res)
			}
		}
		res := h.Request(stagetest.Request(t, request(method, to, tc.answer.header(method, uri, nonce))), stagetest.At(t0.Add(tc.after)))
		failures := failuresOf(t, h)
		switch {
		case res.Err != nil:
			t.Errorf("test %d (%s): %v", i, tc.name, res.Err)
		case tc.code == 0:
			if res.Verdict != pipeline.Continue {
				t.Errorf("test %d (%s): %s, want continue", i, tc.name, res)
			}
		case res.Verdict != pipeline.Replied || res.Code() != tc.code:
			t.Errorf("test %d (%s): %s, want %d", i, tc.name, res, tc.code)
		case tc.code != 403:
			for _, v := range append(res.Headers("WWW-Authenticate"), res.Headers("Proxy-Authenticate")...) {
				if p := parseChallenge(t, v); (p["stale"] == "true") != tc.stale || p["nonce"] == nonce {
					t.Errorf("test %d (%s): challenge %q, want stale %v and a new nonce", i, tc.name, v, tc.stale)
				}
			}
		}
		if got := failures.Count(source, t0.Add(tc.after), time.Hour); got != map[bool]int{true: 1}[tc.failed] {
			t.Errorf("test %d (%s): %d failures recorded, want failed %v", i, tc.name, got, tc.failed)
		}
	}
}

// failuresOf returns the Failures service the auth stage records into.
func failuresOf(t *testing.T, h *stagetest.Harness) *ratelimit.Failures {
	t.Helper()
	v, ok := h.Services.Shared.Load(ratelimit.FailuresKey)
	if !ok {
		t.Fatal("no Failures shared")
	}
	return v.(*ratelimit.Failures)
}

// TestSameAnswer checks that an unknown user, a wrong password and no
// credentials at all get answers of one shape: only the nonce differs.
func TestSameAnswer(t *testing.T) {
	for _, method := range []string{"REGISTER", "INVITE"} {
		h := harness(t, "")
		first := h.Request(stagetest.Request(t, request(method, "alice")))
		header := "Proxy-Authenticate"
		if method == "REGISTER" {
			header = "WWW-Authenticate"
		}
		nonce := parseChallenge(t, first.Header(header))["nonce"]
		uri := first.Received.Recipient.String()
		answers := map[string]string{
			"no credentials": request(method, "alice"),
			"wrong password": request(method, "alice", answer{alg: "SHA-256", user: "alice", password: "guess"}.header(method, uri, nonce)),
			"unknown user":   request(method, "alice", answer{alg: "SHA-256", user: "mallory", password: "secret"}.header(method, uri, nonce)),
			"unknown, MD5":   request(method, "alice", answer{alg: "MD5", user: "mallory", password: "secret"}.header(method, uri, nonce)),
			"wrong, MD5":     request(method, "alice", answer{alg: "MD5", user: "alice", password: "guess"}.header(method, uri, nonce)),
		}
		shapes := map[string]string{}
		for what, raw := range answers {
			res := h.Request(stagetest.Request(t, raw))
			if res.Reply == nil {
				t.Fatalf("%s, %s: %s", method, what, res)
			}
			reply := res.Reply.String()
			for _, v := range res.Headers(header) {
				reply = strings.ReplaceAll(reply, parseChallenge(t, v)["nonce"], "NONCE")
			}
			reply = regexp.MustCompile(`;tag=\S+`).ReplaceAllString(reply, ";tag=TAG")
			shapes[what] = reply
		}
		for what, shape := range shapes {
			if shape != shapes["no credentials"] {
				t.Errorf("%s, %s: the answer\n%s\ndiffers from the one without credentials:\n%s", method, what, shape, shapes["no credentials"])
			}
		}
	}
}

// TestForward checks that valid credentials for our realm are taken off
// the request, and those for other realms kept.
func TestForward(t *testing.T) {
	h := harness(t, "")
	first := h.Request(stagetest.Request(t, request("INVITE", "")))
	nonce := parseChallenge(t, first.Header("Proxy-Authenticate"))["nonce"]
	uri := first.Received.Recipient.String()
	ours := func(nc string) string {
		return answer{alg: "SHA-256", user: "alice", password: "secret", nc: nc}.header("INVITE", uri, nonce)
	}
	theirs := `Proxy-Authorization: Digest username="alice", realm="example.com", nonce="abc", uri="sip:bob@example.org", response="0123456789abcdef0123456789abcdef"`
	tests := []struct {
		headers []string
	}{
		{[]string{ours("00000001")}},
		{[]string{theirs, ours("00000002")}},
		{[]string{ours("00000003"), theirs}},
		{[]string{"Proxy-Authorization: Basic YWxpY2U6c2VjcmV0", ours("00000004"), theirs}},
		{[]string{theirs, "proxy-authorization: " + strings.TrimPrefix(ours("00000005"), "Proxy-Authorization: "), theirs}},
	}
	for i, tc := range tests {
		res := h.Request(stagetest.Request(t, request("INVITE", "", tc.headers...)))
		if res.Err != nil || res.Verdict != pipeline.Continue {
			t.Errorf("test %d: %s", i, res)
			continue
		}
		var want stagetest.Diff
		for _, hdr := range tc.headers {
			if strings.Contains(hdr, `realm="example.org"`) {
				want = append(want, "-"+hdr)
			}
		}
		if got := res.Changed(); !slices.Equal(got, want) {
			t.Errorf("test %d: changed\n%s\nwant\n%s", i, got, want)
		}
	}
}

// TestPassThrough checks that ACK and CANCEL go on unchecked.
func TestPassThrough(t *testing.T) {
	h := harness(t, "")
	for _, method := range []string{"ACK", "CANCEL"} {
		raw := strings.Replace(request("INVITE", ""), "INVITE", method, 2)
		res := h.Request(stagetest.Request(t, raw))
		if res.Err != nil || res.Verdict != pipeline.Continue || res.Made != nil {
			t.Errorf("%s: %s", method, res)
		}
	}
}

// TestWhen checks that a `when` rule decides which requests need
// credentials.
func TestWhen(t *testing.T) {
	h := harness(t, `when = 'request.method == "REGISTER" || (!in_dialog && from.host == "example.org" && !cidr(source.ip, "10.0.0.0/8"))'`)
	tests := []struct {
		raw  string
		from string
		code int
	}{
		{raw: request("REGISTER", "alice"), from: "192.0.2.10:5060", code: 401},
		{raw: request("REGISTER", "alice"), from: "10.1.2.3:5060", code: 401},
		{raw: request("INVITE", ""), from: "192.0.2.10:5060", code: 407},
		{raw: request("INVITE", ""), from: "10.1.2.3:5060", code: 0},
		{raw: strings.Replace(request("INVITE", ""), "To: <sip:bob@example.org>", "To: <sip:bob@example.org>;tag=x", 1), from: "192.0.2.10:5060", code: 0},
		{raw: strings.Replace(request("INVITE", ""), "From: <sip:alice@example.org>", "From: <sip:alice@example.com>", 1), from: "192.0.2.10:5060", code: 0},
	}
	for i, tc := range tests {
		res := h.Request(stagetest.Request(t, tc.raw), stagetest.From(tc.from))
		if res.Err != nil || res.Code() != tc.code {
			t.Errorf("test %d: %s, want %d", i, res, tc.code)
		}
	}
}

// TestReload checks that an edit of the users file, then a new build over
// the same services (what the watcher does), lets a new user in, and that
// nonces and their counts outlive the reload.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.txt")
	line := func(user, password string) string {
		s := sha256.Sum256([]byte(user + ":example.org:" + password))
		return user + ":example.org:-:" + hex.EncodeToString(s[:]) + "\n"
	}
	if err := os.WriteFile(users, []byte(line("alice", "secret")), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := &pipeline.Services{}
	t.Cleanup(func() { _ = svc.Close() })
	opts := []stagetest.Option{stagetest.WithServices(svc), stagetest.WithConfigPath(filepath.Join(dir, "config.toml"))}

	h1 := stagetest.Stage(t, "auth", keys, opts...)
	if !slices.Contains(h1.Pipeline.Files(), users) {
		t.Errorf("the pipeline's files %q do not include %s: an edit would not reload", h1.Pipeline.Files(), users)
	}
	first := h1.Request(stagetest.Request(t, request("REGISTER", "dave")))
	nonce := parseChallenge(t, first.Header("WWW-Authenticate"))["nonce"]
	uri := first.Received.Recipient.String()
	dave := answer{alg: "SHA-256", user: "dave", password: "davepass"}
	if res := h1.Request(stagetest.Request(t, request("REGISTER", "dave", dave.header("REGISTER", uri, nonce)))); res.Code() != 401 {
		t.Fatalf("dave before the edit: %s", res)
	}

	if err := os.WriteFile(users, []byte(line("alice", "secret")+line("dave", "davepass")), 0o600); err != nil {
		t.Fatal(err)
	}
	h2 := stagetest.Stage(t, "auth", keys, opts...)
	dave.nc = "00000002"
	if res := h2.Request(stagetest.Request(t, request("REGISTER", "dave", dave.header("REGISTER", uri, nonce)))); res.Verdict != pipeline.Continue {
		t.Errorf("dave after the edit, with the nonce of before: %s", res)
	}
	if res := h2.Request(stagetest.Request(t, request("REGISTER", "dave", dave.header("REGISTER", uri, nonce)))); res.Code() != 401 {
		t.Errorf("dave's nc 2 again: %s", res)
	}
	h3 := stagetest.Stage(t, "auth", keys+"\n"+`nonce_secret = "0123456789abcdef0123"`, opts...)
	dave.nc = "00000003"
	if res := h3.Request(stagetest.Request(t, request("REGISTER", "dave", dave.header("REGISTER", uri, nonce)))); res.Code() != 401 || !strings.Contains(res.Header("WWW-Authenticate"), "stale=true") {
		t.Errorf("the nonce of another secret: %s", res)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		keys string
		err  []string // "" for none
	}{
		{keys: keys},
		{keys: keys + "\n" + `algorithms = ["SHA-256"]` + "\n" + `nonce_ttl = "30s"` + "\n" + `nonce_secret = "a secret of twenty chars"`},
		{keys: `users = "users.txt"`, err: []string{"realm: empty"}},
		{keys: `realm = "example.org"`, err: []string{"users: empty"}},
		{keys: keys + "\n" + `algorithms = []`, err: []string{"algorithms: empty"}},
		{keys: keys + "\n" + `algorithms = ["SHA-512"]`, err: []string{`algorithms: "SHA-512" is not "SHA-256" or "MD5"`}},
		{keys: keys + "\n" + `algorithms = ["MD5-sess"]`, err: []string{`algorithms: "MD5-sess" is not`}},
		{keys: keys + "\n" + `algorithms = ["MD5", "md5"]`, err: []string{`algorithms: "md5" is given twice`}},
		{keys: keys + "\n" + `nonce_ttl = "0s"`, err: []string{`nonce_ttl: "0s" is shorter than 1s`}},
		{keys: keys + "\n" + `nonce_secret = "short"`, err: []string{"nonce_secret: shorter than 16 characters"}},
		{keys: keys + "\n" + `nonce_ttl = 300`, err: []string{"nonce_ttl"}},
		{keys: keys + "\n" + `realms = "x"`, err: []string{"realms: unknown key"}},
		{keys: `realm = "example.org"` + "\n" + `users = "missing.txt"`, err: []string{"users: open testdata/missing.txt"}},
		{keys: `realm = "example.net"` + "\n" + `users = "users.txt"`, err: []string{`users: testdata/users.txt: no user in realm "example.net"`}},
		{keys: keys + "\n" + `algorithms = ["MD5"]`},
		{keys: keys + "\n" + `any_from = ["bob", "carol"]`},
		{keys: keys + "\n" + `any_from = ["pbz"]`, err: []string{`any_from: "pbz" is not a user of realm "example.org" in the users file`}},
		{keys: keys + "\n" + `any_from = ["bob", "bob"]`, err: []string{`any_from: "bob" is given twice`}},
		{keys: keys + "\n" + `any_from = ["", "bob"]`, err: []string{`any_from: an empty user name`}},
		{keys: keys + "\n" + `any_from = "bob"`, err: []string{"any_from"}},
		{keys: `realm = "example.com"` + "\n" + `users = "users.txt"` + "\n" + `algorithms = ["SHA-256"]`, err: []string{`users: testdata/users.txt: no user in realm "example.com" has a hash for SHA-256`}},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "auth", tc.keys, stagetest.WithConfigPath("testdata/config.toml"))
		if len(tc.err) == 0 {
			if err != nil {
				t.Errorf("test %d: %v", i, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("test %d: no error, want %q", i, tc.err)
			continue
		}
		for _, want := range tc.err {
			if !strings.Contains(err.Error(), "stage 1 (auth): "+want) {
				t.Errorf("test %d: error\n%v\nwant %q", i, err, want)
			}
		}
	}
}

func TestParseUsers(t *testing.T) {
	const md5x = "543e1aec5d3614f03141652d6ada51b2"
	const sha = "d1659fff7a501be15962adc35514ca6a5868905695f2dd1093741f931e000a1f"
	tests := []struct {
		data  string
		users []string
		err   string
	}{
		{data: "alice:example.org:" + md5x + ":" + sha + "\n", users: []string{"alice"}},
		{data: "# comment\n\n  alice:example.org:" + strings.ToUpper(md5x) + ":-  \r\nbob:example.org:-:" + sha + "\n", users: []string{"alice", "bob"}},
		{data: "alice:example.com:" + md5x + ":-\nbob:example.org:" + md5x + ":-", users: []string{"bob"}},
		{data: "alice:example.org:" + md5x, err: "users.txt:1: 3 fields, want 4"},
		{data: "\nalice:example.org:" + md5x + ":" + md5x, err: "users.txt:2: user \"alice\": the SHA-256 hash"},
		{data: "alice:example.org:xyz:-", err: "the MD5 hash \"xyz\" is not 32 hex digits"},
		{data: "alice:example.org:-:-", err: `user "alice" has no hash`},
		{data: ":example.org:" + md5x + ":-", err: "users.txt:1: the user name is empty"},
		{data: "alice:example.org:" + md5x + ":-\nalice:example.org:-:" + sha, err: `users.txt:2: user "alice" is already on line 1`},
		{data: "# nobody\n", err: `users.txt: no user in realm "example.org"`},
	}
	for i, tc := range tests {
		users, err := parseUsers(tc.data, "users.txt", "example.org")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("test %d: error %v, want %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		var got []string
		for u := range users {
			got = append(got, u)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.users) {
			t.Errorf("test %d: users %q, want %q", i, got, tc.users)
		}
	}
}

func TestNonceCounts(t *testing.T) {
	n := newNonceCounts(3)
	steps := []struct {
		nonce string
		nc    uint32
		ok    bool
	}{
		{"a", 1, true}, {"a", 1, false}, {"a", 2, true}, {"b", 5, true}, {"b", 4, false},
		{"c", 1, true}, {"d", 1, true}, // "a" is forgotten: full
		{"a", 1, true}, // "b" is forgotten: the first used longest ago
		{"c", 1, false}, {"d", 2, true}, {"b", 1, true},
	}
	for i, s := range steps {
		if got := n.advance(s.nonce, s.nc); got != s.ok {
			t.Errorf("step %d: advance(%q, %d) = %v, want %v", i, s.nonce, s.nc, got, s.ok)
		}
		if n.Len() > 3 {
			t.Errorf("step %d: %d nonces, more than 3", i, n.Len())
		}
	}
}

// TestOwnAORByDomain checks that with server.aor = "user@domain" a user
// registers only the AOR of the realm: alice of example.org may not take
// alice@example.net, another user's AOR there.
func TestOwnAORByDomain(t *testing.T) {
	alice := answer{alg: "SHA-256", user: "alice", password: "secret"}
	tests := []struct {
		aor    string
		domain string // of the REGISTER's To and From
		code   int    // 0: the request goes on
	}{
		{aor: "user@domain", domain: "example.org"},
		{aor: "user@domain", domain: "EXAMPLE.ORG"},
		{aor: "user@domain", domain: "example.net", code: 403},
		{aor: "user", domain: "example.net"}, // one AOR per user name: alice is alice
	}
	for i, tc := range tests {
		h := harness(t, "", stagetest.WithAOR(tc.aor), stagetest.WithDomains("example.org", "example.net"))
		register := func(headers ...string) string {
			return strings.ReplaceAll(request("REGISTER", "alice", headers...), "alice@example.org", "alice@"+tc.domain)
		}
		first := h.Request(stagetest.Request(t, register()), stagetest.At(t0))
		if first.Code() != 401 {
			t.Fatalf("test %d: no challenge: %s", i, first)
		}
		nonce := parseChallenge(t, first.Headers("WWW-Authenticate")[0])["nonce"]
		uri := first.Received.Recipient.String()
		res := h.Request(stagetest.Request(t, register(alice.header("REGISTER", uri, nonce))), stagetest.At(t0))
		switch {
		case tc.code == 0 && res.Verdict != pipeline.Continue:
			t.Errorf("test %d (%s, To %s): %s, want continue", i, tc.aor, tc.domain, res)
		case tc.code != 0 && res.Code() != tc.code:
			t.Errorf("test %d (%s, To %s): %s, want %d", i, tc.aor, tc.domain, res, tc.code)
		}
	}
}
