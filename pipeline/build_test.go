package pipeline

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
)

// echo is a test stage: it replies with Code to requests, and sets the
// reason of responses to Reason.
type echo struct {
	Code     int    `toml:"code"`
	Reason   string `toml:"reason"`
	Final    bool   `toml:"final"`
	Fail     bool   `toml:"fail_validate"`
	provided bool
}

func (e *echo) ServeRequest(ctx *Context) (Verdict, error) {
	if e.Code == 0 {
		return Continue, nil
	}
	ctx.Reply(e.Code, "Echo")
	return Replied, nil
}

func (e *echo) ServeResponse(ctx *ResponseContext) error {
	if e.Reason != "" {
		ctx.Response.Reason = e.Reason
	}
	return nil
}

func (e *echo) Terminal() bool { return e.Final }

func (e *echo) Validate() error {
	if e.Fail {
		return errors.New("fail_validate: asked to fail")
	}
	return nil
}

func (e *echo) Provision(b *BuildContext) error {
	provisionedFailing = provisionedFailing || e.Fail
	e.provided = true
	return nil
}

// provisionedFailing is set when a test_echo whose Validate fails was
// provisioned all the same.
var provisionedFailing bool

var cleanups int

func (e *echo) Cleanup() error { cleanups++; return nil }

func init() {
	Register(StageInfo{Name: "test_echo", Description: "test", New: func() Stage { return new(echo) }})
}

func testServices() *Services {
	return &Services{Log: slog.Default(), Sockets: []Socket{{Transport: "UDP", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}}}
}

func build(t *testing.T, toml string) (*Pipeline, error) {
	t.Helper()
	cfg, err := config.Parse("c.toml", []byte(toml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Build(cfg, testServices())
}

// testSets declares the sets "pstn" and "trunk" in 8 lines.
const testSets = `[[set]]
name = "pstn"
[[set.destination]]
uri = "sip:192.0.2.1"
[[set]]
name = "trunk"
[[set.destination]]
uri = "sip:192.0.2.2"
`

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want string
	}{
		{"unknown stage", "[[stage]]\nuse = 'nope'", `c.toml:2:1: stage 1 (nope): use: unknown stage type "nope" (registered:`},
		{"stage type typo", "[[stage]]\n  use = 'test_ecko'", `c.toml:2:3: stage 1 (test_ecko): use: unknown stage type "test_ecko", did you mean "test_echo"? (registered:`},
		{"rule does not compile", "[[stage]]\nuse = 'test_echo'\nwhen = 'respons.code == 200'", `c.toml:3:1: stage 1 (test_echo): when: unknown name respons (1:1) in ` + "`| respons.code == 200`" + `, did you mean "response"?`},
		{"rule field typo", "[[stage]]\nuse = 'test_echo'\n\nwhen = 'request.methd == \"BYE\"'", `c.toml:4:1: stage 1 (test_echo): when: `},
		{"rule not bool", "[[stage]]\nuse = 'test_echo'\nwhen = 'response.code'", `c.toml:3:1: stage 1 (test_echo): when: expected bool, but got int`},
		{"empty rule", "[[stage]]\nuse = 'test_echo'\nwhen = ' '", `c.toml:3:1: stage 1 (test_echo): when: the rule is empty`},
		{"unknown key", "[[stage]]\nuse = 'test_echo'\ncodes = 3", `c.toml:3:1: stage 1 (test_echo): codes: unknown key, did you mean "code"? (known: code, reason, final, fail_validate)`},
		{"wrong type", "[[stage]]\nuse = 'test_echo'\ncode = 'x'", `c.toml:3:1: stage 1 (test_echo): code:`},
		{"validate", "[[stage]]\nuse = 'test_echo'\nfail_validate = true", `c.toml:3:1: stage 1 (test_echo): fail_validate: asked to fail`},
		{"terminal not last", "[[stage]]\nuse = 'test_echo'\nfinal = true\n[[stage]]\nuse = 'test_echo'", `c.toml:1:3: stage 1 (test_echo): is terminal`},
		{"second stage", "[[stage]]\nuse = 'test_echo'\n[[stage]]\nuse = 'test_echo'\nwhen = 'x =='", `c.toml:5:1: stage 2 (test_echo): when:`},
		{"unknown set in a rule", testSets + "[[stage]]\nuse = 'test_echo'\nwhen = 'source.set == \"pstm\"'", `c.toml:11:1: stage 1 (test_echo): when: source.set: unknown set "pstm", did you mean "pstn"? (sets: "pstn", "trunk")`},
		{"unknown set, reversed", testSets + "[[stage]]\nuse = 'test_echo'\nwhen = '\"gw\" != source.set'", `c.toml:11:1: stage 1 (test_echo): when: source.set: unknown set "gw"`},
		{"unknown set in a list", testSets + "[[stage]]\nuse = 'test_echo'\nwhen = 'source.set in [\"pstn\", \"trunks\"]'", `c.toml:11:1: stage 1 (test_echo): when: source.set: unknown set "trunks", did you mean "trunk"?`},
		{"a set without sets", "[[stage]]\nuse = 'test_echo'\nwhen = 'source.set == \"pstn\"'", `c.toml:3:1: stage 1 (test_echo): when: source.set: unknown set "pstn" (sets: none: declare one with [[set]], or name a trunk stage)`},
		{"unknown set in the trace rule", testSets + "[log]\ntrace = true\ntrace_when = 'source.set == \"x\"'\n[[stage]]\nuse = 'test_echo'", `c.toml:11:1: log: trace_when: source.set: unknown set "x"`},
		{"trace rule", "[log]\ntrace = true\ntrace_when = 'call_di == \"x\"'\n[[stage]]\nuse = 'test_echo'", `c.toml:3:1: log: trace_when: unknown name call_di (1:1) in ` + "`| call_di == \"x\"`" + `, did you mean "call_id"?`},
	}
	for i, tc := range tests {
		_, err := build(t, tc.toml)
		if err == nil {
			t.Errorf("test %d (%s): built", i, tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d (%s): %q does not contain %q", i, tc.name, err, tc.want)
		}
	}
}

func TestBuildCleansUpOnFailure(t *testing.T) {
	before := cleanups
	_, err := build(t, "[[stage]]\nuse = 'test_echo'\n[[stage]]\nuse = 'test_echo'\nfail_validate = true")
	if err == nil {
		t.Fatal("built")
	}
	if cleanups-before != 2 {
		t.Errorf("cleanups = %d, want 2", cleanups-before)
	}
	if provisionedFailing {
		t.Errorf("a stage whose Validate failed was provisioned: Validate must come first")
	}
}

func parseReq(t *testing.T, raw string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

const invite = `INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1;rport
From: "Alice" <sip:alice@example.org>;tag=a1
To: <sip:bob@example.org>
Call-ID: c1
CSeq: 1 INVITE
Max-Forwards: 70
X-Test: yes
Content-Length: 0

`

// TestPartyOurs: from.ours is true for a From that names one of our
// domains in any case, or the proxy's address, and for nothing else: a
// rule on from.host alone is got past by a case or an address.
func TestPartyOurs(t *testing.T) {
	p, err := build(t, "[server]\ndomains = ['example.org']\n[[stage]]\nuse = 'test_echo'\ncode = 403\nwhen = 'from.ours'")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from string
		want Verdict
	}{
		{"sip:ceo@example.org", Replied},
		{"sip:ceo@Example.ORG", Replied},
		{"sip:ceo@example.org:5080", Replied},
		{"sip:mallory@evil.test", Continue},
		{"sip:ceo@example.org.evil.test", Continue},
	}
	for i, tc := range tests {
		req := parseReq(t, strings.Replace(invite, `"Alice" <sip:alice@example.org>`, "<"+tc.from+">", 1))
		ctx := NewContext(p, req, Source{IP: netip.MustParseAddr("127.0.0.2"), Port: 5062}, "UDP")
		if v, err := p.ServeRequest(ctx, nil); err != nil || v != tc.want {
			t.Errorf("test %d: From %s: verdict %s (%v), want %s", i, tc.from, v, err, tc.want)
		}
	}
}

func TestServeRequestRules(t *testing.T) {
	tests := []struct {
		rule string
		want Verdict
	}{
		{`request.method == "INVITE"`, Replied},
		{`request.method == "BYE"`, Continue},
		{`request.uri.user == "bob" && request.uri.ours`, Replied},
		{`from.user == "alice" && from.tag == "a1" && from.display == "Alice"`, Replied},
		{`from.ours && to.ours`, Replied},
		{`to.user == "bob" && !in_dialog`, Replied},
		{`call_id == "c1" && cseq.method == "INVITE" && cseq.seq == 1`, Replied},
		{`source.ip == "127.0.0.2" && source.port == 5062 && transport == "UDP"`, Replied},
		{`source.nated`, Replied}, // its Via names port 5060, it came from 5062
		{`header("X-Test") == "yes" && header("X-None") == ""`, Replied},
		{`response.code == 0 && !is_response`, Replied},
		{`int(header("X-Test")) > 0`, Continue}, // fails at run time: no match
	}
	for i, tc := range tests {
		p, err := build(t, "[server]\ndomains = ['example.org']\n[[stage]]\nuse = 'test_echo'\ncode = 403\nwhen = '"+tc.rule+"'")
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		ctx := NewContext(p, parseReq(t, invite), Source{IP: netip.MustParseAddr("127.0.0.2"), Port: 5062}, "UDP")
		v, err := p.ServeRequest(ctx, nil)
		if err != nil {
			t.Errorf("test %d: %v", i, err)
		}
		if v != tc.want {
			t.Errorf("test %d: %s: verdict %s, want %s", i, tc.rule, v, tc.want)
		}
	}
}

func TestServeResponseRules(t *testing.T) {
	p, err := build(t, "[[stage]]\nuse = 'test_echo'\nreason = 'OK THANKS'\nwhen = 'response.code == 200 && is_response && request.method == \"INVITE\"'")
	if err != nil {
		t.Fatal(err)
	}
	req := parseReq(t, invite)
	for i, tc := range []struct {
		code int
		want string
	}{{200, "OK THANKS"}, {180, "Ringing"}, {486, "Busy Here"}} {
		res := sip.NewResponseFromRequest(req, tc.code, map[int]string{200: "OK", 180: "Ringing", 486: "Busy Here"}[tc.code], nil)
		if err := p.ServeResponse(NewResponseContext(p, req, res, true, Source{}, "UDP"), nil); err != nil {
			t.Fatal(err)
		}
		if res.Reason != tc.want {
			t.Errorf("test %d: reason %q, want %q", i, res.Reason, tc.want)
		}
	}
}

func TestOurs(t *testing.T) {
	o := NewOurs([]string{"Example.org"}, []Socket{
		{Transport: "UDP", Addr: netip.MustParseAddrPort("127.0.0.1:5060")},
		{Transport: "UDP", Addr: netip.MustParseAddrPort("0.0.0.0:5070")},
		{Transport: "TLS", Addr: netip.MustParseAddrPort("0.0.0.0:5061"), Advertise: "sip.example.com"},
		{Transport: "TLS", Addr: netip.MustParseAddrPort("0.0.0.0:5062"), Advertise: "tls.example.com:443"},
	}, []netip.Addr{netip.MustParseAddr("192.0.2.10")}, "proxy.example.net", 5080)
	tests := []struct {
		uri  string
		want bool
	}{
		{"sip:bob@example.org", true},
		{"sip:bob@EXAMPLE.ORG:9999", true},
		{"sip:bob@127.0.0.1", true},
		{"sip:bob@127.0.0.1:5060", true},
		{"sip:bob@127.0.0.1:5069", false},
		{"sip:bob@192.0.2.10:5070", true},
		{"sip:bob@192.0.2.11:5070", false},
		{"sip:bob@127.0.0.5:5070", true},
		{"sip:proxy.example.net:5080", true},
		{"sip:bob@other.org", false},
		{"sip:SIP.example.com:5061;transport=tls", true},
		{"sips:sip.example.com", true},
		{"sip:sip.example.com:5062", false},
		{"sip:tls.example.com:443", true},
		{"sip:tls.example.com:5062", false},
	}
	for i, tc := range tests {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatal(err)
		}
		if got := o.URI(&u); got != tc.want {
			t.Errorf("test %d: %s ours = %v, want %v", i, tc.uri, got, tc.want)
		}
	}
}

func TestAdvertisedPerListener(t *testing.T) {
	p, err := build(t, "[server]\nadvertise = 'proxy.example.net'\n[[stage]]\nuse = 'test_echo'")
	if err != nil {
		t.Fatal(err)
	}
	p.Services.Sockets = []Socket{
		{Transport: "UDP", Addr: netip.MustParseAddrPort("0.0.0.0:5060")},
		{Transport: "TLS", Addr: netip.MustParseAddrPort("0.0.0.0:5061"), Advertise: "sip.example.com"},
		{Transport: "TCP", Addr: netip.MustParseAddrPort("0.0.0.0:5070"), Advertise: "[2001:db8::1]:5071"},
	}
	tests := []struct {
		transport, host string
		port            int
	}{
		{"UDP", "proxy.example.net", 5060},
		{"TLS", "sip.example.com", 5061},
		{"tls", "sip.example.com", 5061},
		{"TCP", "2001:db8::1", 5071},
	}
	for i, tc := range tests {
		if h, port := p.Advertised(tc.transport); h != tc.host || port != tc.port {
			t.Errorf("test %d: %s advertised %s %d, want %s %d", i, tc.transport, h, port, tc.host, tc.port)
		}
	}
}

func TestAORKey(t *testing.T) {
	for i, tc := range []struct {
		aor, uri, want string
	}{
		{"user", "sip:alice@192.0.2.10", "alice"},
		{"user", "sip:alice@example.org", "alice"},
		{"user@domain", "sip:alice@Example.org", "alice@example.org"},
		{"user", "sip:example.org", "example.org"},
	} {
		p, err := build(t, "[server]\naor = '"+tc.aor+"'\n[[stage]]\nuse = 'test_echo'")
		if err != nil {
			t.Fatal(err)
		}
		var u sip.Uri
		_ = sip.ParseUri(tc.uri, &u)
		if got := p.AORKey(&u); got != tc.want {
			t.Errorf("test %d: %q", i, got)
		}
	}
}

func TestRuleFailuresCounted(t *testing.T) {
	p, err := build(t, "[[stage]]\nuse = 'test_echo'\ncode = 403\nwhen = 'int(header(\"X-Test\")) > 0'")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx := NewContext(p, parseReq(t, invite), Source{}, "UDP")
		if v, _ := p.ServeRequest(ctx, nil); v != Continue {
			t.Errorf("verdict %s", v)
		}
	}
	if got := p.RuleFailures()["stage 1 (test_echo)"]; got != 3 {
		t.Errorf("rule failures = %d, want 3", got)
	}
}

func TestCIDR(t *testing.T) {
	tests := []struct {
		rule string
		ip   string
		want Verdict
	}{
		{`cidr(source.ip, "127.0.0.0/8")`, "127.0.0.2", Replied},
		{`cidr(source.ip, "10.0.0.0/8")`, "127.0.0.2", Continue},
		{`cidr(source.ip, "127.0.0.2")`, "127.0.0.2", Replied},
		{`cidr(source.ip, "::1/128")`, "::1", Replied},
		{`cidr(source.ip, "::ffff:127.0.0.0/104")`, "127.0.0.2", Replied}, // as allow and trusted_sources read it
		{`!cidr(source.ip, "192.168.0.0/16") && cidr(source.ip, "127.0.0.1/8")`, "127.0.0.9", Replied},
		{`cidr(source.ip, "not a net")`, "127.0.0.2", Continue}, // fails at run time: no match
	}
	for i, tc := range tests {
		p, err := build(t, "[[stage]]\nuse = 'test_echo'\ncode = 403\nwhen = '"+tc.rule+"'")
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		ctx := NewContext(p, parseReq(t, invite), Source{IP: netip.MustParseAddr(tc.ip), Port: 5060}, "UDP")
		if v, _ := p.ServeRequest(ctx, nil); v != tc.want {
			t.Errorf("test %d: %s from %s: %s, want %s", i, tc.rule, tc.ip, v, tc.want)
		}
	}
	if _, err := build(t, "[[stage]]\nuse = 'test_echo'\nwhen = 'cidr(source.port, \"10.0.0.0/8\")'"); err == nil {
		t.Error("cidr on an int compiled")
	}
}
