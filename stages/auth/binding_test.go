package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// bound returns request(method, to) with its Request-URI and From URI
// replaced, when given.
func bound(method, to, ruri, from string, headers ...string) string {
	raw := request(method, to, headers...)
	if ruri != "" {
		line, _, _ := strings.Cut(raw, "\n")
		raw = method + " " + ruri + " SIP/2.0" + strings.TrimPrefix(raw, line)
	}
	if from != "" {
		i := strings.Index(raw, "From: <")
		j := strings.Index(raw[i:], ">")
		raw = raw[:i] + "From: <" + from + raw[i+j:]
	}
	return raw
}

// TestDigestBinding checks that valid credentials are accepted only for
// the request they were computed for: the digest uri must be the
// Request-URI (RFC 2617 3.2.2.5, compared as RFC 3261 19.1.4 compares
// URIs), and a From in our domains must name the authenticated user,
// unless that user is in any_from.
func TestDigestBinding(t *testing.T) {
	alice := answer{alg: "SHA-256", user: "alice", password: "secret"}
	pbx := answer{alg: "SHA-256", user: "pbx", password: "pbxpass"}
	with := func(a answer, f func(*answer)) answer { f(&a); return a }
	const gateway = "sip:+19005550100@gw.example.net"
	tests := []struct {
		name   string
		keys   string
		aor    string // server.aor; "" is the default
		method string // "" is INVITE
		to     string // the REGISTER's To user; "" is alice
		ruri   string // "" is request's
		from   string // the From URI; "" is request's
		answer answer
		code   int    // 0: the request goes on
		reason string // the reply's reason phrase, when code is set
	}{
		{name: "the Request-URI", answer: alice},
		{name: "the Request-URI of a REGISTER", method: "REGISTER", answer: alice},
		{name: "host in another case", answer: with(alice, func(a *answer) { a.uri = "sip:bob@EXAMPLE.org" })},
		{name: "scheme in another case", answer: with(alice, func(a *answer) { a.uri = "SIP:bob@example.org" })},
		{name: "an escaped user", answer: with(alice, func(a *answer) { a.uri = "sip:%62ob@example.org" })},
		{name: "parameters in another order and case", ruri: "sip:bob@example.org;transport=tcp;user=phone",
			answer: with(alice, func(a *answer) { a.uri = "sip:bob@example.org;USER=phone;transport=TCP" })},
		{name: "an extra parameter", ruri: "sip:bob@example.org;ob", answer: with(alice, func(a *answer) { a.uri = "sip:bob@example.org" })},

		{name: "another user's URI to a gateway", ruri: gateway, answer: with(alice, func(a *answer) { a.uri = "sip:bob@example.org" }),
			code: 400, reason: "Bad Request: digest uri is not the Request-URI"},
		{name: "another user", answer: with(alice, func(a *answer) { a.uri = "sip:carol@example.org" }), code: 400},
		{name: "user in another case", answer: with(alice, func(a *answer) { a.uri = "sip:BOB@example.org" }), code: 400},
		{name: "a port", answer: with(alice, func(a *answer) { a.uri = "sip:bob@example.org:5060" }), code: 400},
		{name: "a transport", answer: with(alice, func(a *answer) { a.uri = "sip:bob@example.org;transport=udp" }), code: 400},
		{name: "a header", answer: with(alice, func(a *answer) { a.uri = "sip:bob@example.org?subject=x" }), code: 400},
		{name: "sips", answer: with(alice, func(a *answer) { a.uri = "sips:bob@example.org" }), code: 400},
		{name: "not a URI", answer: with(alice, func(a *answer) { a.uri = "bob" }), code: 400},
		{name: "a REGISTER for another domain", method: "REGISTER", answer: with(alice, func(a *answer) { a.uri = "sip:example.com" }), code: 400},

		{name: "From in another case of host", from: "sip:alice@Example.ORG", answer: alice},
		{name: "someone else's From", from: "sip:carol-ceo@example.org", answer: alice,
			code: 403, reason: "Forbidden: From is not the authenticated user"},
		{name: "From user in another case", from: "sip:Alice@example.org", answer: alice, code: 403},
		{name: "From with the user's name at another domain of ours", aor: "user@domain", from: "sip:alice@example.net", answer: alice, code: 403},
		{name: "From at another domain of ours, one AOR per user", aor: "user", from: "sip:alice@example.net", answer: alice},
		{name: "From of another domain", from: "sip:carol-ceo@example.com", answer: alice},
		{name: "From at our address", from: "sip:carol-ceo@127.0.0.1:5060", answer: alice, code: 403},
		{name: "REGISTER with someone else's From", method: "REGISTER", from: "sip:carol@example.org", answer: alice, code: 403},
		{name: "any_from", keys: `any_from = ["pbx"]`, from: "sip:carol-ceo@example.org", answer: pbx},
		{name: "any_from is not everyone", keys: `any_from = ["pbx"]`, from: "sip:carol-ceo@example.org", answer: alice, code: 403},
		{name: "any_from registers only its own AOR", keys: `any_from = ["pbx"]`, method: "REGISTER", to: "alice", answer: pbx, code: 403},
	}
	for i, tc := range tests {
		opts := []stagetest.Option{stagetest.WithDomains("example.org", "example.net")}
		if tc.aor != "" {
			opts = append(opts, stagetest.WithAOR(tc.aor))
		}
		h := harness(t, tc.keys, opts...)
		method, to := or(tc.method, "INVITE"), or(tc.to, "alice")
		first := h.Request(stagetest.Request(t, bound(method, to, tc.ruri, tc.from)))
		challenge := first.Header("Proxy-Authenticate")
		if method == "REGISTER" {
			challenge = first.Header("WWW-Authenticate")
		}
		if challenge == "" {
			t.Fatalf("test %d (%s): no challenge: %s", i, tc.name, first)
		}
		nonce := parseChallenge(t, challenge)["nonce"]
		uri := first.Received.Recipient.String()
		res := h.Request(stagetest.Request(t, bound(method, to, tc.ruri, tc.from, tc.answer.header(method, uri, nonce))))
		switch {
		case res.Err != nil:
			t.Errorf("test %d (%s): %v", i, tc.name, res.Err)
		case tc.code == 0 && res.Verdict != pipeline.Continue:
			t.Errorf("test %d (%s): %s, want continue", i, tc.name, res)
		case tc.code != 0 && (res.Verdict != pipeline.Replied || res.Code() != tc.code):
			t.Errorf("test %d (%s): %s, want %d", i, tc.name, res, tc.code)
		case tc.reason != "" && res.Reason() != tc.reason:
			t.Errorf("test %d (%s): reason %q, want %q", i, tc.name, res.Reason(), tc.reason)
		}
		// The user whose password checked out, for the rules and the
		// response stages, even when refused.
		if got := res.Context.AuthUser; got != tc.answer.user {
			t.Errorf("test %d (%s): auth user %q, want %q", i, tc.name, got, tc.answer.user)
		}
		if failures := failuresOf(t, h).Count(source, t0, time.Hour); failures != 0 {
			t.Errorf("test %d (%s): %d failures recorded: the password was right", i, tc.name, failures)
		}
	}
}

// TestAuthUser checks that auth.user is the authenticated user for the
// rules of the stages after auth, and "" without valid credentials.
func TestAuthUser(t *testing.T) {
	h := stagetest.Chain(t, `[[stage]]
use   = "auth"
realm = "example.org"
users = "users.txt"

[[stage]]
use    = "rewrite"
when   = 'auth.user == "alice" && from.user == auth.user'
add_header = { "X-Auth-User" = "alice" }
`, stagetest.WithConfigPath("testdata/config.toml"), stagetest.WithTime(func() time.Time { return t0 }))
	first := h.Request(stagetest.Request(t, request("INVITE", "")))
	nonce := parseChallenge(t, first.Header("Proxy-Authenticate"))["nonce"]
	if first.Context.AuthUser != "" || first.Code() != 407 {
		t.Errorf("without credentials: %s, auth user %q", first, first.Context.AuthUser)
	}
	uri := first.Received.Recipient.String()
	for _, a := range []answer{{alg: "SHA-256", user: "alice", password: "guess"}, {alg: "SHA-256", user: "alice", password: "secret"}} {
		res := h.Request(stagetest.Request(t, request("INVITE", "", a.header("INVITE", uri, nonce))))
		right := a.password == "secret"
		if got := res.Request.GetHeader("X-Auth-User") != nil; got != right {
			t.Errorf("password %q: %s, X-Auth-User added %v", a.password, res, got)
		}
	}
}
