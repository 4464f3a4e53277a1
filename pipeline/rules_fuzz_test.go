package pipeline_test

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/parse"
)

// fuzzRules read every name of the rule environment (docs/rules.md) and
// both functions, header() with names a message may or may not have, and
// conversions that fail at run time on a header that is not a number.
var fuzzRules = []string{
	`request.method == "INVITE" && request.uri.user != "" && request.uri.host != "" && request.uri.port >= 0 && request.uri.ours`,
	`from.user + from.host + from.tag + from.display != "" || to.user + to.host + to.tag + to.display != ""`,
	`call_id contains "@" || cseq.method == request.method || cseq.seq > 0`,
	`in_dialog || is_response || (response.code >= 200 && response.reason != "") || auth.user == from.user`,
	`cidr(source.ip, "10.0.0.0/8") || cidr(request.uri.host, "192.0.2.0/24") || source.port == 5060 || transport == "UDP"`,
	`cidr(header("X-Real-IP"), "2001:db8::/32") || cidr(to.host, "127.0.0.1")`,
	`header("User-Agent") contains "Linphone" || header("Via") startsWith "SIP/2.0" || header("X-Count") matches "^[0-9]+$"`,
	`int(header("X-Count")) > 3`,
	`len(header("Contact")) > 100 || lower(from.host) == "example.org" || upper(header("v")) endsWith "LR"`,
	`request.method == "REGISTER" || (!in_dialog && from.host == "example.org" && !cidr(source.ip, "10.0.0.0/8"))`,
}

// fuzzMessages seed FuzzRuleEnv's corpus, besides the RFC 4475 torture
// messages in testdata/fuzz/FuzzRuleEnv.
var fuzzMessages = []string{
	"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\n" +
		"From: \"Alice\" <sip:alice@example.org>;tag=1928301774\r\nTo: Bob <sip:bob@example.org>\r\nCall-ID: a84b4c76e66710@pc33.example.org\r\n" +
		"CSeq: 314159 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\nUser-Agent: Linphone/5.2\r\nX-Count: 7\r\nContent-Length: 0\r\n\r\n",
	"BYE sip:alice@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.20:5060;branch=z9hG4bKnashds7\r\nMax-Forwards: 70\r\n" +
		"From: Bob <sip:bob@example.org>;tag=a6c85cf\r\nTo: \"Alice\" <sip:alice@example.org>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33.example.org\r\n" +
		"CSeq: 231 BYE\r\nX-Real-IP: 2001:db8::1\r\nX-Count: many\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\nFrom: \"Alice\" <sip:alice@example.org>;tag=1928301774\r\n" +
		"To: Bob <sip:bob@example.org>;tag=a6c85cf\r\nCall-ID: a84b4c76e66710@pc33.example.org\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 192.0.2.10\r\nf: <sip:alice@example.org>;tag=1\r\nt: <sip:alice@example.org>\r\ni: x\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n",
	"OPTIONS tel:+15551234;phone-context=example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
}

// FuzzRuleEnv builds the rule environment of any message sipgo parses, as
// a request (pipeline.NewContext) or as a response on its way upstream,
// with and without the request it answers, and runs compiled rules on it.
// Building the environment and running a rule must never panic; a rule may
// fail at run time (it then counts as no match), and the environment must
// describe the message it was built from. A rule run on a new context,
// which builds only the fields the rule reads, must match as it does on
// the whole environment.
func FuzzRuleEnv(f *testing.F) {
	for _, m := range fuzzMessages {
		f.Add([]byte(m))
	}
	var rules []*pipeline.Rule
	for _, text := range fuzzRules {
		r, err := pipeline.CompileRule(text)
		if err != nil {
			f.Fatalf("rule %s: %v", text, err)
		}
		rules = append(rules, r)
	}
	// The pipeline only supplies server.domains and the sockets, for
	// request.uri.ours; nothing runs in it.
	h := stagetest.Chain(f, `[[stage]]
use = "parse"
`)
	src := pipeline.Source{IP: netip.MustParseAddr("192.0.2.10"), Port: 5060}
	run := func(t *testing.T, env *pipeline.Env, fresh func() pipeline.EnvSource, raw []byte) {
		t.Helper()
		for i, r := range rules {
			ok, err := r.Match(env) // an error is a rule that does not match
			lazyOK, lazyErr := r.Match(fresh())
			if ok != lazyOK || (err == nil) != (lazyErr == nil) {
				t.Fatalf("rule %d: %v, %v on the whole environment; %v, %v on its own fields\n%q", i, ok, err, lazyOK, lazyErr, raw)
			}
		}
		if env.Header == nil {
			t.Fatalf("no header function\n%q", raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := sip.ParseMessage(raw)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *sip.Request:
			fresh := func() pipeline.EnvSource { return pipeline.NewContext(h.Pipeline, m, src, "UDP") }
			env := pipeline.NewContext(h.Pipeline, m, src, "UDP").Env()
			if env.Request.Method != string(m.Method) || env.IsResponse || env.Response.Code != 0 {
				t.Fatalf("request env: method %q, is_response %v, response.code %d\n%q", env.Request.Method, env.IsResponse, env.Response.Code, raw)
			}
			if env.Source.IP != "192.0.2.10" || env.Source.Port != 5060 {
				t.Fatalf("request env: source %s:%d\n%q", env.Source.IP, env.Source.Port, raw)
			}
			run(t, env, fresh, raw)
			// The proxy's own answer to it, as the response stages see it.
			res := sip.NewResponseFromRequest(m, 486, "Busy Here", nil)
			rfresh := func() pipeline.EnvSource { return pipeline.NewResponseContext(h.Pipeline, m, res, true, src, "UDP") }
			renv := pipeline.NewResponseContext(h.Pipeline, m, res, true, src, "UDP").Env()
			if !renv.IsResponse || renv.Response.Code != 486 || renv.Request.Method != string(m.Method) {
				t.Fatalf("response env: is_response %v, code %d, method %q\n%q", renv.IsResponse, renv.Response.Code, renv.Request.Method, raw)
			}
			run(t, renv, rfresh, raw)
		case *sip.Response:
			// A response relayed without its request (a 2xx retransmission).
			fresh := func() pipeline.EnvSource { return pipeline.NewResponseContext(h.Pipeline, nil, m, false, src, "UDP") }
			env := pipeline.NewResponseContext(h.Pipeline, nil, m, false, src, "UDP").Env()
			if !env.IsResponse || env.Response.Code != m.StatusCode || env.Response.Reason != m.Reason {
				t.Fatalf("response env: is_response %v, code %d %q\n%q", env.IsResponse, env.Response.Code, env.Response.Reason, raw)
			}
			run(t, env, fresh, raw)
		}
	})
}
