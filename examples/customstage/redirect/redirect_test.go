package redirect

import (
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// invite is a new call from alice to the Request-URI ruri.
func invite(ruri string) string {
	return `
INVITE ` + ruri + ` SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <` + ruri + `>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060>
`
}

const keys = `map = { "100" = "sip:alice@example.org", "200" = "bob", "300" = "sips:carol@example.com:5061;transport=tcp" }`

func TestServeRequest(t *testing.T) {
	tests := []struct {
		keys    string
		raw     string
		verdict pipeline.Verdict
		code    int
		reason  string
		contact string
	}{
		// 0-2: a number in the map, to a URI, or to a user at the called host.
		{raw: invite("sip:100@example.org"), verdict: pipeline.Replied, code: 302, reason: "Moved Temporarily", contact: "<sip:alice@example.org>"},
		{raw: invite("sip:200@example.org"), verdict: pipeline.Replied, code: 302, reason: "Moved Temporarily", contact: "<sip:bob@example.org>"},
		{raw: invite("sips:200@127.0.0.1:5060"), verdict: pipeline.Replied, code: 302, reason: "Moved Temporarily", contact: "<sips:bob@127.0.0.1:5060>"},
		{raw: invite("sip:300@example.org"), verdict: pipeline.Replied, code: 302, reason: "Moved Temporarily", contact: "<sips:carol@example.com:5061;transport=tcp>"},
		// 4: code = 301.
		{keys: "code = 301", raw: invite("sip:100@example.org"), verdict: pipeline.Replied, code: 301, reason: "Moved Permanently", contact: "<sip:alice@example.org>"},
		// 5-6: a user not in the map, or one that differs in case, goes on.
		{raw: invite("sip:101@example.org"), verdict: pipeline.Continue},
		{raw: invite("sip:Bob@example.org"), verdict: pipeline.Continue},
		// 7: another domain goes on.
		{raw: invite("sip:100@example.com"), verdict: pipeline.Continue},
		// 8: a re-INVITE in a dialog goes on.
		{raw: strings.Replace(invite("sip:100@example.org"), "To: <sip:100@example.org>", "To: <sip:100@example.org>;tag=x1", 1), verdict: pipeline.Continue},
		// 9-10: other methods go on.
		{raw: strings.NewReplacer("INVITE sip", "MESSAGE sip", "314159 INVITE", "314159 MESSAGE").Replace(invite("sip:100@example.org")), verdict: pipeline.Continue},
		{raw: strings.NewReplacer("INVITE sip", "OPTIONS sip", "314159 INVITE", "314159 OPTIONS").Replace(invite("sip:100@example.org")), verdict: pipeline.Continue},
		// 11-12: a `when` rule decides where the stage runs.
		{keys: `when = 'from.user == "alice"'`, raw: invite("sip:100@example.org"), verdict: pipeline.Replied, code: 302, reason: "Moved Temporarily", contact: "<sip:alice@example.org>"},
		{keys: `when = 'from.user == "bob"'`, raw: invite("sip:100@example.org"), verdict: pipeline.Continue},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "redirect", keys+"\n"+tc.keys)
		res := h.Request(stagetest.Request(t, tc.raw))
		if res.Err != nil {
			t.Errorf("test %d: %v", i, res.Err)
			continue
		}
		if res.Verdict != tc.verdict || res.Code() != tc.code || res.Reason() != tc.reason {
			t.Errorf("test %d: %s, want %s %d %s", i, res, tc.verdict, tc.code, tc.reason)
			continue
		}
		if !res.Changed().Empty() {
			t.Errorf("test %d: the request changed:\n%s", i, res.Changed())
		}
		if res.Reply == nil {
			continue
		}
		if got := res.Headers("Contact"); len(got) != 1 || got[0] != tc.contact {
			t.Errorf("test %d: Contact %q, want %q", i, got, tc.contact)
		}
		if tag := res.Reply.To().Params.GetOr("tag", ""); tag == "" {
			t.Errorf("test %d: the reply's To has no tag", i)
		}
		if res.Header("Call-ID") != "a84b4c76e66710@pc33.example.org" || res.Header("CSeq") != "314159 INVITE" {
			t.Errorf("test %d: reply\n%s", i, res.Reply)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		keys string
		err  string // "" for none
	}{
		{keys: `map = { "100" = "alice" }`},
		{keys: `map = { "100" = "alice" }` + "\ncode = 301"},
		{keys: `map = { "+1%2F00" = "sip:alice@example.org;transport=tcp" }`},
		{keys: ``, err: "test.toml:5:3: stage 1 (redirect): map: empty"},
		{keys: `map = {}`, err: "map: empty"},
		{keys: `map = { "100" = "alice" }` + "\ncode = 303", err: "test.toml:8:1: stage 1 (redirect): code: 303 is not 301 (Moved Permanently) or 302 (Moved Temporarily)"},
		{keys: `map = { "100" = "alice" }` + "\ncode = \"302\"", err: "stage 1 (redirect): code:"},
		{keys: `map = { "100" = "http://example.org/alice" }`, err: `map: "100": "http://example.org/alice" is not a SIP URI: the scheme is not sip or sips`},
		{keys: `map = { "100" = "sip:example.org" }`, err: `map: "100": "sip:example.org" names no user`},
		{keys: `map = { "100" = "bob@example.org" }`, err: `map: "100": "bob@example.org" is neither a user nor a SIP URI: write sip:bob@example.org`},
		{keys: `map = { "100" = "b b" }`, err: `map: "100": the target "b b" is not a user: " " is not allowed in one`},
		{keys: `map = { "1 00" = "bob" }`, err: `map: "1 00": "1 00" is not a user`},
		{keys: `map = { "" = "bob" }`, err: `map: "": "" is not a user`},
		{keys: `map = { "100" = "" }`, err: `map: "100": the target "" is not a user`},
		{keys: `map = { "100" = 100 }`, err: "stage 1 (redirect): map"},
		{keys: `map = { "100" = "alice" }` + "\ntarget = \"x\"", err: "target: unknown key (known: map, code)"},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "redirect", tc.keys)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("test %d: error %v, want one with %q", i, err, tc.err)
		}
	}
}

// TestEveryMistake checks that every mistake is reported, each on its own
// line with the stage's label.
func TestEveryMistake(t *testing.T) {
	_, err := stagetest.BuildStage(t, "redirect", `map = { "1" = "http://x", "2" = "a b" }`+"\ncode = 200")
	if err == nil {
		t.Fatal("built")
	}
	want := []string{
		"test.toml:8:1: stage 1 (redirect): code: 200 is not 301 (Moved Permanently) or 302 (Moved Temporarily)",
		`test.toml:7:1: stage 1 (redirect): map: "1": "http://x" is not a SIP URI: the scheme is not sip or sips`,
		`test.toml:7:1: stage 1 (redirect): map: "2": the target "a b" is not a user: " " is not allowed in one`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// TestStats checks that the count outlives a reload: a second pipeline over
// the same services counts on.
func TestStats(t *testing.T) {
	h := stagetest.Stage(t, "redirect", keys)
	h.Request(stagetest.Request(t, invite("sip:100@example.org")))
	h.Request(stagetest.Request(t, invite("sip:101@example.org")))
	again := stagetest.Stage(t, "redirect", keys, stagetest.WithServices(h.Services))
	again.Request(stagetest.Request(t, invite("sip:200@example.org")))
	v, ok := h.Services.Shared.Load(StatsKey)
	if !ok {
		t.Fatal("no Stats shared")
	}
	if n := v.(*Stats).Redirected.Load(); n != 2 {
		t.Errorf("redirected %d, want 2", n)
	}
}

// TestReadme checks that README.md has the sections every stage's README
// has, and that its examples build.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md")
}
