package location_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	loc "github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// call is a new request for user@example.org from a caller of domain.
func call(method, user, domain string) string {
	return strings.Replace(request(method, "sip:"+user+"@example.org", "", ""),
		"From: <sip:alice@example.org>", "From: <sip:mallory@"+domain+">", 1)
}

// toTag matches the To tag the proxy makes afresh for every answer.
var toTag = regexp.MustCompile(`(?m)^(To: .*;tag=)[^;\r\n]*`)

// TestHideUnknown is the enumeration of users by calls from other domains:
// an unknown user, a user whose registration was removed or lapsed, and
// one whose bindings cannot be used must get the same answer, to the byte
// but for the To tag, when hide_unknown selects the request.
func TestHideUnknown(t *testing.T) {
	now := time.Now()
	const foreign = `hide_unknown = 'from.host != "example.org"'`
	tests := []struct {
		name    string
		keys    string
		raw     string
		verdict pipeline.Verdict
		code    int
		reason  string
	}{
		{"off: unknown", "", call("INVITE", "zed", "evil.example"), pipeline.Replied, 404, "Not Found"},
		{"off: unregistered", "", call("INVITE", "carol", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"foreign: unknown", foreign, call("INVITE", "zed", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"foreign: unregistered", foreign, call("INVITE", "carol", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"foreign: no usable binding", foreign, call("INVITE", "frank", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"foreign: unknown, OPTIONS", foreign, call("OPTIONS", "zed", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"foreign: unknown, MESSAGE", foreign, call("MESSAGE", "zed", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"foreign: registered", foreign, call("INVITE", "bob", "evil.example"), pipeline.Continue, 0, ""},
		{"ours: unknown", foreign, call("INVITE", "zed", "example.org"), pipeline.Replied, 404, "Not Found"},
		{"ours: unregistered", foreign, call("INVITE", "carol", "example.org"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"everyone: unknown", `hide_unknown = 'true'`, call("INVITE", "zed", "example.org"), pipeline.Replied, 480, "Temporarily Unavailable"},
		{"rule fails: hidden", `hide_unknown = 'cidr(source.ip, header("X-Net"))'`, call("INVITE", "zed", "evil.example"), pipeline.Replied, 480, "Temporarily Unavailable"},
	}
	// answers are the hidden answers, by request, To tag blanked.
	answers := map[string]string{}
	for i, tc := range tests {
		h := stagetest.Stage(t, "location", tc.keys)
		set := func(aor string, bs []loc.Binding) {
			if _, err := h.Location().Update(aor, now, func([]loc.Binding) ([]loc.Binding, error) { return bs, nil }); err != nil {
				t.Fatal(err)
			}
		}
		set("bob", []loc.Binding{{Contact: "sip:bob@192.0.2.20:5060", Expires: now.Add(time.Hour)}})
		set("carol", []loc.Binding{{Contact: "sip:carol@192.0.2.40", Expires: now.Add(time.Hour)}})
		set("carol", nil) // unregistered: known, no binding
		set("frank", []loc.Binding{{Contact: "<not a uri>", Expires: now.Add(time.Hour)}})
		res := h.Request(stagetest.Request(t, tc.raw))
		if res.Err != nil || res.Verdict != tc.verdict {
			t.Errorf("test %d (%s): %s, want %s", i, tc.name, res, tc.verdict)
			continue
		}
		if tc.verdict != pipeline.Replied {
			continue
		}
		if res.Code() != tc.code || res.Reason() != tc.reason {
			t.Errorf("test %d (%s): %d %s, want %d %s", i, tc.name, res.Code(), res.Reason(), tc.code, tc.reason)
		}
		if tc.code != 480 || tc.keys == "" {
			continue
		}
		// Every hidden answer to one request is the same: the user in
		// the Request-URI is the only thing that differs between them.
		key := tc.raw
		for _, user := range []string{"zed", "carol", "frank"} {
			key = strings.ReplaceAll(key, user+"@", "USER@")
		}
		got := toTag.ReplaceAllString(res.Reply.String(), "${1}TAG")
		for _, user := range []string{"zed", "carol", "frank"} {
			got = strings.ReplaceAll(got, user+"@", "USER@")
		}
		if want, ok := answers[key]; ok && got != want {
			t.Errorf("test %d (%s): the answer tells the user apart:\n%s\nwant\n%s", i, tc.name, got, want)
		}
		answers[key] = got
	}
}

func TestHideUnknownConfig(t *testing.T) {
	tests := []struct {
		keys string
		err  string
	}{
		{keys: `hide_unknown = 'from.host != "example.org"'`},
		{keys: `hide_unknown = 'from.hots != "example.org"'`, err: "stage 1 (location): hide_unknown: "},
		{keys: `hide_unknown = '"yes"'`, err: "stage 1 (location): hide_unknown: "},
		{keys: `hide_unknown = true`, err: "hide_unknown"},
		{keys: `hide = 'true'`, err: "hide: unknown key"},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "location", tc.keys)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("test %d: error %v, want %q", i, err, tc.err)
		}
	}
}
