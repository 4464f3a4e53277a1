package stagetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

const invite = `
INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: "Alice" <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060>
User-Agent: Phone/1.0
`

const register = `
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKreg1
Max-Forwards: 70
From: <sip:bob@example.org>;tag=r1
To: <sip:bob@example.org>
Call-ID: reg1
CSeq: 1 REGISTER
Contact: <sip:bob@192.0.2.20:5060>
`

const ringing = `
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
From: "Alice" <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>;tag=b1
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.20:5060>
User-Agent: Desk/2.0
`

// The proxy's chain, as config.toml has it.
const proxy = `
[[stage]]
use = "parse"

[[stage]]
use  = "registrar"
when = 'request.method == "REGISTER"'

[[stage]]
use = "location"

[[stage]]
use = "record_route"

[[stage]]
use    = "rewrite"
when   = 'response.code == 200'
reason = "OK THANKS"

[[stage]]
use = "forward"
fr_timeout = "5s"
`

func TestStage(t *testing.T) {
	tests := []struct {
		keys    string
		raw     string
		verdict pipeline.Verdict
		code    int
		reason  string
	}{
		// 0: a good INVITE goes on.
		{raw: invite, verdict: pipeline.Continue},
		// 1: Max-Forwards 0 is answered.
		{raw: strings.Replace(invite, "Max-Forwards: 70", "Max-Forwards: 0", 1), verdict: pipeline.Replied, code: 483, reason: "Too Many Hops"},
		// 2: an INVITE without Contact is answered, unless the keys say not to.
		{raw: strings.Replace(invite, "Contact: <sip:alice@192.0.2.10:5060>\n", "", 1), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing Contact in INVITE"},
		{keys: "require_contact = false", raw: strings.Replace(invite, "Contact: <sip:alice@192.0.2.10:5060>\n", "", 1), verdict: pipeline.Continue},
		// 4: a `when` rule that does not match skips the stage.
		{keys: `when = 'request.method == "BYE"'`, raw: strings.Replace(invite, "Max-Forwards: 70", "Max-Forwards: 0", 1), verdict: pipeline.Continue},
	}
	for i, tc := range tests {
		h := Stage(t, "parse", tc.keys)
		res := h.Request(Request(t, tc.raw))
		if res.Err != nil {
			t.Errorf("test %d: %v", i, res.Err)
			continue
		}
		if res.Verdict != tc.verdict || res.Code() != tc.code || res.Reason() != tc.reason {
			t.Errorf("test %d: %s, want %s %d %q", i, res, tc.verdict, tc.code, tc.reason)
		}
		if res.Verdict == pipeline.Continue && !res.Changed().Empty() {
			t.Errorf("test %d: the request changed:\n%s", i, res.Changed())
		}
	}
}

func TestChain(t *testing.T) {
	h := Chain(t, proxy, WithTime(clock))

	// Bob registers from his own address, over TCP.
	reg := h.Request(Request(t, register), From("192.0.2.20:5060"), Over("tcp"))
	if reg.Verdict != pipeline.Replied || reg.Code() != 200 {
		t.Fatalf("REGISTER: %s", reg)
	}
	if reg.Reason() != "OK THANKS" || reg.Made.Reason != "OK" {
		t.Errorf("the reply did not run through rewrite: made %q, sent %q", reg.Made.Reason, reg.Reason())
	}
	if got, want := reg.ReplyChanged(), (Diff{"-SIP/2.0 200 OK", "+SIP/2.0 200 OK THANKS"}); !slices.Equal(got, want) {
		t.Errorf("reply changed:\n%s\nwant:\n%s", got, want)
	}
	if got, want := reg.Ran, []string{"stage 1 (parse)", "stage 2 (registrar)"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
	if got := reg.Header("Contact"); got != "<sip:bob@192.0.2.20:5060>;expires=3600" {
		t.Errorf("Contact %q", got)
	}
	bs, _, err := h.Location().Lookup("bob", t0)
	if err != nil || len(bs) != 1 || bs[0].Received != "192.0.2.20:5060" || bs[0].Transport != "TCP" || !bs[0].Updated.Equal(t0) {
		t.Fatalf("bindings %+v, %v", bs, err)
	}

	// Alice calls him.
	call := h.Request(Request(t, invite))
	if call.Verdict != pipeline.Forwarded || call.Err != nil {
		t.Fatalf("INVITE: %s", call)
	}
	if call.Forwarded != call.Request || call.Reply != nil || call.Code() != 0 {
		t.Errorf("forwarded %v, reply %v", call.Forwarded, call.Reply)
	}
	if len(call.Targets) != 1 || call.Targets[0].URI.String() != "sip:bob@192.0.2.20:5060" || call.Targets[0].Transport != "TCP" {
		t.Errorf("targets %+v", call.Targets)
	}
	if !call.RecordRoute || call.Forward.ProvisionalTimeout != 5*time.Second {
		t.Errorf("record-route %v, forward %+v", call.RecordRoute, call.Forward)
	}
	// rewrite runs on requests too, but its rule is about responses.
	if got, want := call.Skipped, []string{"stage 2 (registrar)", "stage 5 (rewrite)"}; !slices.Equal(got, want) {
		t.Errorf("skipped %q, want %q", got, want)
	}
	if got, want := call.Ran, []string{"stage 1 (parse)", "stage 3 (location)", "stage 4 (record_route)", "stage 6 (forward)"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
	if len(call.Steps) != 6 || call.Steps[5].Verdict != pipeline.Forwarded {
		t.Errorf("steps %+v", call.Steps)
	}

	// Carol is nobody: location answers 404 and the engine sends it.
	nobody := h.Request(Request(t, strings.ReplaceAll(invite, "bob@", "carol@")))
	if nobody.Verdict != pipeline.Replied || nobody.Code() != 404 || nobody.Header("CSeq") != "314159 INVITE" {
		t.Errorf("INVITE carol: %s", nobody)
	}
}

func TestHarnessResponse(t *testing.T) {
	tests := []struct {
		keys    string
		opts    []ResponseOption
		reason  string
		changed Diff
	}{
		// 0: rewrite on responses.
		{
			keys:    `remove_header = ["User-Agent"]` + "\n" + `set_header = { "Server" = "Switchboard" }`,
			reason:  "Ringing",
			changed: Diff{"-User-Agent: Desk/2.0", "+Server: Switchboard"},
		},
		// 1: a rule on the response.
		{keys: "when = 'response.code == 180'\nreason = \"Ring Ring\"", reason: "Ring Ring", changed: Diff{"-SIP/2.0 180 Ringing", "+SIP/2.0 180 Ring Ring"}},
		{keys: "when = 'response.code == 200'\nreason = \"Ring Ring\"", reason: "Ringing"},
		// 3: a local response.
		{keys: "reason = \"Ours\"", opts: []ResponseOption{Local()}, reason: "Ours", changed: Diff{"-SIP/2.0 180 Ringing", "+SIP/2.0 180 Ours"}},
		// 4: a stage on requests only leaves it.
		{keys: "apply_to = \"requests\"\nset_header = { \"X-A\" = \"b\" }", reason: "Ringing"},
	}
	for i, tc := range tests {
		h := Stage(t, "rewrite", tc.keys)
		in := Response(t, ringing)
		res := h.Response(Request(t, invite), in, tc.opts...)
		if res.Err != nil {
			t.Errorf("test %d: %v", i, res.Err)
		}
		if res.Code() != 180 || res.Reason() != tc.reason {
			t.Errorf("test %d: %d %s, want 180 %s", i, res.Code(), res.Reason(), tc.reason)
		}
		if !slices.Equal(res.Changed(), tc.changed) {
			t.Errorf("test %d: changed:\n%s\nwant:\n%s", i, res.Changed(), tc.changed)
		}
		if in.Reason != "Ringing" || in.GetHeader("Server") != nil {
			t.Errorf("test %d: the response given was changed", i)
		}
	}
}

func TestRequestChanged(t *testing.T) {
	h := Stage(t, "rewrite", `value_expr = { "X-Caller" = 'from.user + "@" + source.ip' }`+"\nremove_header = [\"user-agent\"]")
	req := Request(t, invite)
	res := h.Request(req)
	want := Diff{"-User-Agent: Phone/1.0", "+X-Caller: alice@192.0.2.10"}
	if !slices.Equal(res.Changed(), want) {
		t.Errorf("changed:\n%s\nwant:\n%s", res.Changed(), want)
	}
	if res.Header("X-Caller") != "alice@192.0.2.10" || res.Received.GetHeader("X-Caller") != nil {
		t.Errorf("result: %s", res)
	}
	if req.GetHeader("X-Caller") != nil || req.GetHeader("User-Agent") == nil {
		t.Error("the request given was changed")
	}
}

func TestStageError(t *testing.T) {
	h := Stage(t, "rewrite", `value_expr = { "X-N" = 'string(int(header("X-Count")) + 1)' }`)
	res := h.Request(Request(t, invite))
	var se *pipeline.StageError
	if !errors.As(res.Err, &se) || se.Stage != "stage 1 (rewrite)" {
		t.Fatalf("error %v, want a StageError of stage 1 (rewrite)", res.Err)
	}
	if res.Reply != nil || !res.Changed().Empty() {
		t.Errorf("result %s, changed %s", res, res.Changed())
	}
	ok := h.Request(Request(t, strings.Replace(invite, "User-Agent", "X-Count: 41\nUser-Agent", 1)))
	if ok.Err != nil || ok.Header("X-N") != "42" {
		t.Errorf("result %s, X-N %q", ok, ok.Header("X-N"))
	}
}

func TestChanged(t *testing.T) {
	req := func(raw string) *sip.Request { return Request(t, raw) }
	tests := []struct {
		before, after string
		want          Diff
	}{
		{invite, invite, nil},
		{invite, strings.Replace(invite, "sip:bob@example.org SIP", "sip:bob@192.0.2.20 SIP", 1), Diff{"-INVITE sip:bob@example.org SIP/2.0", "+INVITE sip:bob@192.0.2.20 SIP/2.0"}},
		{invite, invite + "X-A: 1\nX-A: 2\n", Diff{"+X-A: 1", "+X-A: 2"}},
		{invite + "X-A: 1\nX-A: 2\n", invite + "X-A: 2\n", Diff{"-X-A: 1"}},
		{invite + "X-A: 1\n", invite + "x-a: 1\n", Diff{"-X-A: 1", "+x-a: 1"}},
		{invite + "\nhello", invite, Diff{"-Content-Length: 5", "+Content-Length: 0", "~body: 5 -> 0 bytes"}},
	}
	for i, tc := range tests {
		got := Changed(req(tc.before), req(tc.after))
		if !slices.Equal(got, tc.want) {
			t.Errorf("test %d: changed:\n%s\nwant:\n%s", i, got, tc.want)
		}
	}
	if got := Changed(nil, Response(t, ringing)); len(got) != 9 || got[0] != "+SIP/2.0 180 Ringing" {
		t.Errorf("from nil: %q", got)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		build func(t testing.TB) error
		want  string
	}{
		{func(t testing.TB) error { _, err := BuildStage(t, "rewrite", "bogus = 1"); return err }, "test.toml:7:1: stage 1 (rewrite): bogus: unknown key"},
		{func(t testing.TB) error {
			_, err := BuildStage(t, "rewrite", "when = 'respons.code == 1'\nreason = \"x\"")
			return err
		}, "test.toml:7:1: stage 1 (rewrite): when: unknown name respons"},
		{func(t testing.TB) error {
			_, err := Build(t, "[[stage]]\nuse = 'forward'\n[[stage]]\nuse = 'parse'")
			return err
		}, "stage 1 (forward): is terminal"},
		{func(t testing.TB) error { _, err := Build(t, "[[stage]]\nfoo = 1"); return err }, "test.toml:5:3: stage 1: use: missing"},
		{func(t testing.TB) error {
			_, err := BuildStage(t, "registrar", "", WithLocation(nil), WithConfigPath("conf/sb.toml"))
			return err
		}, "conf/sb.toml:5:3: stage 1 (registrar): no location store"},
	}
	for i, tc := range tests {
		err := tc.build(t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want %q", i, err, tc.want)
		}
	}
	fatal := []struct {
		fn   func(t testing.TB)
		want string
	}{
		{func(t testing.TB) { Stage(t, "nope", "") }, `no stage "nope" is registered`},
		{func(t testing.TB) { Stage(t, "rewrite", "bogus = 1") }, "the chain does not build:\ntest.toml:7:1: stage 1 (rewrite): bogus: unknown key"},
		{func(t testing.TB) { Chain(t, proxy, WithSource("nowhere")) }, `WithSource("nowhere"): not an ip:port`},
	}
	for i, tc := range fatal {
		if got := fails(tc.fn); !strings.Contains(got, tc.want) {
			t.Errorf("fatal %d: failed with %q, want %q", i, got, tc.want)
		}
	}
}

func TestServer(t *testing.T) {
	tests := []struct {
		toml string
		opts []Option
		// ours says whether sip:bob@<host> is ours, for each host.
		ours map[string]bool
	}{
		{toml: "[[stage]]\nuse = 'location'", ours: map[string]bool{"example.org": true, "127.0.0.1": true, "example.com": false}},
		{toml: "[[stage]]\nuse = 'location'", opts: []Option{WithDomains("example.com", "example.net")}, ours: map[string]bool{"example.org": false, "example.com": true, "example.net": true}},
		{toml: "[server]\ndomains = ['example.net']\nlisten = ['udp://192.0.2.1:5070']\n[[stage]]\nuse = 'location'", ours: map[string]bool{"example.org": false, "example.net": true, "127.0.0.1": false, "192.0.2.1:5070": true}},
		{toml: "server.domains = ['example.net']\n[[stage]]\nuse = 'location'", ours: map[string]bool{"example.org": false, "example.net": true}},
		{toml: "[server]\ndomains = ['example.net']\n[[stage]]\nuse = 'location'", opts: []Option{WithDomains("example.com")}, ours: map[string]bool{"example.net": false, "example.com": true}},
	}
	for i, tc := range tests {
		h := Chain(t, tc.toml, tc.opts...)
		for host, want := range tc.ours {
			// location refuses a request for a foreign domain with 403.
			res := h.Request(Request(t, strings.Replace(invite, "INVITE sip:bob@example.org", "INVITE sip:bob@"+host, 1)))
			if got := res.Code() != 403; got != want {
				t.Errorf("test %d: %s ours = %v, want %v (%s)", i, host, got, want, res)
			}
		}
	}
}

func TestHasServer(t *testing.T) {
	tests := []struct {
		toml string
		want bool
	}{
		{"[[stage]]\nuse = 'parse'", false},
		{"[server]\n[[stage]]\nuse = 'parse'", true},
		{"[log]\ntrace = true\n[ server ] # the server\n", true},
		{"server = { domains = ['a'] }\n", true},
		{"[[stage]]\nuse = 'x'\nserver = 'a'\n", false},
		{"[[server]]\n", false},
	}
	for i, tc := range tests {
		if got := hasServer(tc.toml); got != tc.want {
			t.Errorf("test %d: hasServer = %v, want %v", i, got, tc.want)
		}
	}
}

// counter is a shared service that counts its closes.
type counter struct {
	n      atomic.Int64
	closed atomic.Bool
}

func (c *counter) Close() error { c.closed.Store(true); return nil }

func TestWithServices(t *testing.T) {
	svc := &pipeline.Services{Location: location.NewMemory()}
	defer svc.Close()
	var shared []*counter
	for range 2 {
		// Two pipelines in a row over the same services, as a reload makes.
		h := Stage(t, "record_route", "", WithServices(svc))
		v, err := h.Services.Shared.LoadOrNew("test/counter", func() (any, error) { return new(counter), nil })
		if err != nil {
			t.Fatal(err)
		}
		c := v.(*counter)
		c.n.Add(1)
		shared = append(shared, c)
		if len(svc.Sockets) != 1 || svc.Log == nil {
			t.Errorf("services not filled in: %+v", svc)
		}
	}
	if shared[0] != shared[1] || shared[1].n.Load() != 2 {
		t.Errorf("the shared service did not outlive the pipeline")
	}
	if shared[0].closed.Load() {
		t.Errorf("the harness closed services it does not own")
	}
}

func TestTransportAndSource(t *testing.T) {
	h := Stage(t, "registrar", "", WithSource("192.0.2.30:5062"), WithTransport("tcp"), WithTime(clock))
	res := h.Request(Request(t, register))
	if res.Code() != 200 {
		t.Fatalf("REGISTER: %s", res)
	}
	bs, _, _ := h.Location().Lookup("bob", t0)
	if len(bs) != 1 || bs[0].Received != "192.0.2.30:5062" || bs[0].Transport != "TCP" || !bs[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("binding %+v", bs)
	}
	if res.Context.Source.String() != "192.0.2.30:5062" || res.Received.Source() != "192.0.2.30:5062" || res.Request.Transport() != "TCP" {
		t.Errorf("source %s / %s, transport %s", res.Context.Source, res.Received.Source(), res.Request.Transport())
	}
	later := h.Request(Request(t, strings.Replace(register, "CSeq: 1", "CSeq: 2", 1)), At(t0.Add(time.Minute)))
	if got := later.Header("Contact"); got != "<sip:bob@192.0.2.20:5060>;expires=3600" {
		t.Errorf("refresh: Contact %q", got)
	}
	bs, _, _ = h.Location().Lookup("bob", t0)
	if len(bs) != 1 || !bs[0].Updated.Equal(t0.Add(time.Minute)) {
		t.Errorf("binding %+v", bs)
	}
}

// TestClock checks that a Clock given to WithTime is the services' clock
// and the time requests arrive at, and that it moves when set.
func TestClock(t *testing.T) {
	c := NewClock(t0)
	h := Stage(t, "record_route", "", WithTime(c.Now))
	tests := []struct {
		move func()
		want time.Time
	}{
		{func() {}, t0},
		{func() { c.Add(time.Minute) }, t0.Add(time.Minute)},
		{func() { c.Set(t0.Add(time.Hour)) }, t0.Add(time.Hour)},
	}
	for i, tc := range tests {
		tc.move()
		if got := h.Services.Now(); !got.Equal(tc.want) {
			t.Errorf("test %d: Services.Now() = %v, want %v", i, got, tc.want)
		}
		if got := h.Request(Request(t, invite)).Context.Received; !got.Equal(tc.want) {
			t.Errorf("test %d: Received %v, want %v", i, got, tc.want)
		}
	}
	// Without WithTime, the clock of WithServices is the harness's.
	svc := &pipeline.Services{Clock: c.Now}
	defer svc.Close()
	if got := Stage(t, "record_route", "", WithServices(svc)).Request(Request(t, invite)).Context.Received; !got.Equal(c.Now()) {
		t.Errorf("Received %v, want the services' clock %v", got, c.Now())
	}
}

// TestContext checks that Context builds the Context Request runs in,
// without running the stages.
func TestContext(t *testing.T) {
	h := Stage(t, "registrar", "", WithTime(clock))
	req := Request(t, register)
	ctx := h.Context(req, From("192.0.2.30:5062"), Over("tcp"))
	if ctx.Request == req || ctx.Request.Source() != "192.0.2.30:5062" || ctx.Transport != "TCP" || !ctx.Received.Equal(t0) {
		t.Errorf("context: request %p (given %p), source %s, transport %s, received %v", ctx.Request, req, ctx.Request.Source(), ctx.Transport, ctx.Received)
	}
	if ctx.Pipeline() != h.Pipeline || ctx.Response() != nil {
		t.Errorf("context of another pipeline, or with a reply")
	}
	if bs, _, _ := h.Location().Lookup("bob", t0); len(bs) != 0 {
		t.Errorf("the stages ran: %+v", bs)
	}
}

// TestClose checks that Close cleans up the pipeline and closes the
// services the harness made, once, and leaves those of WithServices open.
func TestClose(t *testing.T) {
	h := Stage(t, "record_route", "")
	c := new(counter)
	if _, err := h.Services.Shared.LoadOrNew("test/counter", func() (any, error) { return c, nil }); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil || !c.closed.Load() {
		t.Errorf("Close: %v, shared service closed %v", err, c.closed.Load())
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	svc := &pipeline.Services{}
	defer svc.Close()
	h = Stage(t, "record_route", "", WithServices(svc))
	c = new(counter)
	if _, err := svc.Shared.LoadOrNew("test/counter", func() (any, error) { return c, nil }); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil || c.closed.Load() {
		t.Errorf("Close: %v, the test's services closed %v", err, c.closed.Load())
	}
}

func TestRouted(t *testing.T) {
	h := Stage(t, "location", "")
	inDialog := strings.Replace(invite, "To: <sip:bob@example.org>", "To: <sip:bob@example.org>;tag=b1", 1)
	if res := h.Request(Request(t, inDialog)); res.Code() != 404 {
		t.Errorf("in-dialog, not routed: %s", res)
	}
	if res := h.Request(Request(t, inDialog), Routed()); res.Verdict != pipeline.Continue || res.Reply != nil {
		t.Errorf("in-dialog, routed: %s", res)
	}
}

// TestConcurrent runs one harness from several goroutines, as the engine
// runs a pipeline; -race checks the stages and the harness.
func TestConcurrent(t *testing.T) {
	h := Chain(t, proxy)
	req := Request(t, invite)
	done := make(chan *Result)
	for range 8 {
		go func() { done <- h.Request(req) }()
	}
	for range 8 {
		if res := <-done; res.Code() != 404 {
			t.Errorf("result %s", res)
		}
	}
}

// everyStage names the metrics every stage has, for a README's Metrics.
const everyStage = "`switchboard_stage_messages_total`, `switchboard_stage_verdicts_total`, `switchboard_stage_seconds_total`, `switchboard_rule_matches_total`, `switchboard_rule_failures_total`"

func TestCheckReadme(t *testing.T) {
	for _, name := range []string{"parse", "registrar", "location", "record_route", "rewrite", "forward"} {
		CheckReadme(t, "../../stages/"+name+"/README.md")
	}

	dir := t.TempDir()
	const sections = "\n\n## Name\n\n## Description\n\n## Syntax\n\n## Examples\n\n"
	tests := []struct {
		text string
		opts []Option
		want []string
	}{
		{
			text: "# parse" + sections + "~~~ toml\n[[stage]]\nuse = \"parse\"\n~~~\n\n```go\nx := 1\n```\n\n```toml\n[[stage]]\nuse = \"forward\"\n```\n\n## Metrics\n\nNone of its own; " + everyStage + ".\n",
		},
		{
			text: "x\n\n## Name\n\n## Syntax\n\n## Description\n\n## Examples\n\n~~~ toml\n[[stage]]\nuse = \"parse\"\nnope = 1\n~~~\n",
			want: []string{
				"does not start with a title",
				`no section "## Syntax" after "## Description"`,
				`no section "## Metrics" after "## Examples"`,
				"example 1 does not build:\ntest.toml:7:1: stage 1 (parse): nope: unknown key",
			},
		},
		{
			text: "# parse" + sections + "None.\n\n## Metrics\n",
			want: []string{"no toml code block under ## Examples"},
		},
		{
			text: "# nope" + sections + "~~~ toml\n[[stage]]\nuse = \"parse\"\n~~~\n\n## Metrics\n\nNone.\n",
			want: []string{`the title names no registered stage: "nope"`},
		},
		{
			// A name that is not exported, and one missing.
			text: "# parse" + sections + "~~~ toml\n[[stage]]\nuse = \"parse\"\n~~~\n\n## Metrics\n\n`switchboard_parse_rejected_total`, " +
				strings.Replace(everyStage, "`switchboard_stage_verdicts_total`, ", "", 1) + ".\n",
			want: []string{
				"## Metrics names switchboard_parse_rejected_total, which Switchboard does not export",
				"## Metrics does not name switchboard_stage_verdicts_total, which the stage exports",
			},
		},
		{
			// A process gauge may be named; a CallLister's must be.
			text: "# calllog" + sections + "~~~ toml\n[[stage]]\nuse = \"calllog\"\npath = \"calls.log\"\n~~~\n\n## Metrics\n\n`switchboard_registrations`; " + everyStage + ".\n",
			opts: []Option{WithConfigPath(filepath.Join(dir, "config.toml"))},
			want: []string{"## Metrics does not name switchboard_active_calls, which the stage exports"},
		},
	}
	for i, tc := range tests {
		path := filepath.Join(dir, fmt.Sprintf("README%d.md", i))
		if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		CheckReadme(rec, path, tc.opts...)
		rec.cleanup()
		if len(rec.errors) != len(tc.want) {
			t.Errorf("test %d: errors %q, want %q", i, rec.errors, tc.want)
			continue
		}
		for j, want := range tc.want {
			if !strings.Contains(rec.errors[j], want) {
				t.Errorf("test %d: error %q, want %q", i, rec.errors[j], want)
			}
		}
	}
}

// recorder is a testing.TB that records its errors.
type recorder struct {
	testing.TB
	errors   []string
	cleanups []func()
}

// cleanup runs what Cleanup registered, last first, as testing does.
func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(fn func())         { r.cleanups = append(r.cleanups, fn) }
func (r *recorder) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (r *recorder) Errorf(f string, a ...any) { r.errors = append(r.errors, fmt.Sprintf(f, a...)) }
