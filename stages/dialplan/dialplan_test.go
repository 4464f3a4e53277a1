package dialplan

import (
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func invite(ruri, extra string) string {
	return `
INVITE ` + ruri + ` SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:0903123456@example.org>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
` + extra + `Content-Length: 0

`
}

// national is a dial plan of Slovakia: national numbers become E.164, a
// short emergency number is left alone, and calls from the trunk at
// 192.0.2.99 keep what they dialled.
const national = `
[[stage.rule]]
match = '^(112|150|155|158)$'

[[stage.rule]]
when    = 'source.ip == "192.0.2.99"'
match   = '.'

[[stage.rule]]
match   = '^00([1-9][0-9]+)$'
replace = '+$1'

[[stage.rule]]
match  = '^0[1-9][0-9]+$'
strip  = 1
prefix = "+421"
`

func TestRewrites(t *testing.T) {
	tests := []struct {
		keys, ruri, extra string
		from              string
		want              string // the Request-URI after, or the header line
		header            string
	}{
		// Strip and add a prefix.
		{keys: national, ruri: "sip:0903123456@example.org", want: "sip:+421903123456@example.org"},
		// Regex replace with a group.
		{keys: national, ruri: "sip:00436641234567@example.org", want: "sip:+436641234567@example.org"},
		// First match wins: the emergency number stops the stage.
		{keys: national, ruri: "sip:112@example.org", want: "sip:112@example.org"},
		// A rule's when: the trunk's numbers stay as dialled.
		{keys: national, ruri: "sip:0903123456@example.org", from: "192.0.2.99:5060", want: "sip:0903123456@example.org"},
		// No rule matches.
		{keys: national, ruri: "sip:alice@example.org", want: "sip:alice@example.org"},
		// continue: the next rule sees the rewritten user, though the
		// stage's own rule read it before.
		{keys: `
when = 'request.uri.user startsWith "0"'

[[stage.rule]]
match    = '^0'
strip    = 1
prefix   = "+421"
continue = true

[[stage.rule]]
when   = 'request.uri.user startsWith "+4219"'
part   = "host"
match  = '.*'
replace = "mobile.example.net"
`, ruri: "sip:0903123456@example.org", want: "sip:+421903123456@mobile.example.net"},
		// Without continue, the second rule does not run.
		{keys: `
[[stage.rule]]
match    = '^0'
strip    = 1
prefix   = "+421"

[[stage.rule]]
part    = "host"
match   = '.*'
replace = "mobile.example.net"
`, ruri: "sip:0903123456@example.org", want: "sip:+421903123456@example.org"},
		// Host, port and parameters.
		{keys: `
[[stage.rule]]
part    = "host"
match   = '^example\.org$'
replace = "127.0.0.1"
continue = true

[[stage.rule]]
part   = "port"
prefix = "5082"
continue = true

[[stage.rule]]
part    = "params"
match   = '(^|;)user=phone'
replace = '${1}transport=tcp'
`, ruri: "sip:0903123456@example.org;user=phone", want: "sip:0903123456@127.0.0.1:5082;transport=tcp"},
		{keys: `
[[stage.rule]]
part    = "params"
match   = '(^|;)user=phone'
replace = '${1}transport=tcp'
`, ruri: "sip:0903123456@example.org;user=phone;lr", want: "sip:0903123456@example.org;transport=tcp;lr"},
		{keys: `
[[stage.rule]]
part    = "port"
match   = '^5060$'
replace = ""
`, ruri: "sip:bob@example.org:5060", want: "sip:bob@example.org"},
		// Strip more than there is.
		{keys: `
[[stage.rule]]
strip = 20
prefix = "x"
`, ruri: "sip:0903@example.org", want: "sip:x@example.org"},
		// A header: every value, in place.
		{keys: `
[[stage.rule]]
header  = "P-Asserted-Identity"
match   = '<sip:0([0-9]+)@'
replace = '<sip:+421$1@'
`, ruri: "sip:bob@example.org", extra: "P-Asserted-Identity: <sip:0212345678@example.org>\r\nX-Other: 1\r\n",
			header: "P-Asserted-Identity", want: "P-Asserted-Identity: <sip:+421212345678@example.org>"},
		// A header the request lacks: the rule does not apply, the next one does.
		{keys: `
[[stage.rule]]
header = "Diversion"
prefix = "x"

[[stage.rule]]
prefix = "9"
`, ruri: "sip:0903@example.org", want: "sip:90903@example.org"},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "dialplan", tc.keys)
		var opts []stagetest.RequestOption
		if tc.from != "" {
			opts = append(opts, stagetest.From(tc.from))
		}
		res := h.Request(stagetest.Request(t, invite(tc.ruri, tc.extra)), opts...)
		if res.Err != nil {
			t.Errorf("test %d: %v", i, res.Err)
			continue
		}
		got := res.Request.Recipient.String()
		if tc.header != "" {
			got = tc.header + ": " + res.Header(tc.header)
			if n := len(res.Request.GetHeaders(tc.header)); n != 1 {
				t.Errorf("test %d: %d %s headers", i, n, tc.header)
			}
			if !strings.Contains(res.Request.String(), "\r\nX-Other: 1\r\n") {
				t.Errorf("test %d: another header was lost:\n%s", i, res.Request)
			}
		}
		if got != tc.want {
			t.Errorf("test %d: got %q, want %q\n%s", i, got, tc.want, res.Changed())
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	tests := []struct {
		keys, want string
	}{
		{"[[stage.rule]]\npart = \"port\"\nprefix = \"x\"\n", `rule[0]: port: "x5060" is not a port`},
		{"[[stage.rule]]\npart = \"host\"\nstrip = 99\n", "rule[0]: host: rewritten to nothing"},
		{"[[stage.rule]]\nprefix = \"a b\"\n", `rule[0]: user: "a b0903": " " is not allowed`},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "dialplan", tc.keys)
		res := h.Request(stagetest.Request(t, invite("sip:0903@example.org:5060", "")))
		if res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want %q", i, res.Err, tc.want)
		}
		if got := res.Request.Recipient.String(); got != "sip:0903@example.org:5060" {
			t.Errorf("test %d: the request changed to %s", i, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		keys, want string
	}{
		{"", "stage 1 (dialplan): rule: none"},
		{"[[stage.rule]]\nmatch = '^0(9'\n", "stage 1 (dialplan): rule[0]: match: error parsing regexp: missing closing ): `^0(9`"},
		{"[[stage.rule]]\nprefix = \"1\"\n[[stage.rule]]\nmatch = '*'\n", "stage 1 (dialplan): rule[1]: match: error parsing regexp"},
		{"[[stage.rule]]\nreplace = \"x\"\n", "rule[0]: replace: needs match"},
		{"[[stage.rule]]\npart = \"scheme\"\nprefix = \"1\"\n", `rule[0]: part: "scheme" is not one of`},
		{"[[stage.rule]]\nheader = \"To\"\nprefix = \"1\"\n", `rule[0]: header: "To" is managed by the proxy`},
		{"[[stage.rule]]\nheader = \"m\"\nprefix = \"1\"\n", `(Contact)`},
		{"[[stage.rule]]\nheader = \"X-A\"\npart = \"user\"\nprefix = \"1\"\n", "rule[0]: header: give part or header, not both"},
		{"[[stage.rule]]\nstrip = -1\n", "rule[0]: strip: -1 is negative"},
		{"[[stage.rule]]\nwhen = 'true'\n", "rule[0]: nothing to do"},
		{"[[stage.rule]]\nwhen = 'respons.code'\nprefix = \"1\"\n", "rule[0]: when: "},
		{"[[stage.rule]]\nprefx = \"1\"\n", "rule[0].prefx: unknown key"},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "dialplan", tc.keys)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want %q", i, err, tc.want)
		}
	}
}
