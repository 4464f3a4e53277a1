package pipeline

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestEnvUses(t *testing.T) {
	tests := []struct {
		rule string
		want envFields
	}{
		{`request.method == "REGISTER"`, useMethod},
		{`request.uri.user == "bob" && request.uri.ours`, useURI | useOurs},
		{`request.uri.port > 0`, useURI},
		{`request.uri?.host == "a"`, useURI},
		{`request["uri"]["ours"]`, useOurs},
		{`let u = request.uri; u.user == "bob"`, useURI | useOurs},
		{`get($env, "call_id") == "c1"`, useAll},
		{`(is_response ? request : request).method == "INVITE"`, useIsResponse | useMethod | useURI | useOurs},
		{`let r = request; r.method == "INVITE"`, useMethod | useURI | useOurs},
		{`from.user == to.user || from.tag != ""`, useFrom | useTo},
		{`from.ours && !to.ours`, useFrom | useFromOurs | useTo | useToOurs},
		{`let f = from; f.user == "alice"`, useFrom | useFromOurs},
		{`in_dialog && cseq.seq > 1 && call_id != ""`, useInDialog | useCSeq | useCallID},
		{`is_response && response.code >= 400`, useIsResponse | useResponse},
		{`cidr(source.ip, "10.0.0.0/8")`, useSourceIP},
		{`source.port == 5060 && transport == "UDP"`, useSourcePort | useTransport},
		{`source.nated`, useSourceNATed},
		{`source.set == "pstn"`, useSourceSet},
		{`source.ip != "" && source.set != ""`, useSourceIP | useSourceSet},
		{`source.ip + ":" + string(source.port) != ""`, useSourceIP | useSourcePort},
		{`header("User-Agent") contains "Linphone"`, useHeader},
		{`any(["a", "b"], # == from.user)`, useFrom},
		{`$env.request.method == "INVITE"`, useAll},
		{`auth.user == "alice"`, useAuth},
		{`auth.user != "" && from.user != auth.user`, useAuth | useFrom},
		{`auth == auth`, useAuth},
		{`true`, 0},
	}
	for i, tc := range tests {
		r, err := CompileRule(tc.rule)
		if err != nil {
			t.Fatalf("test %d: %s: %v", i, tc.rule, err)
		}
		if r.uses != tc.want {
			t.Errorf("test %d: %s: uses %014b, want %014b", i, tc.rule, r.uses, tc.want)
		}
	}
}

// envLeaf is one name of the rule environment that a rule can read, with
// its value in an Env.
type envLeaf struct {
	path  string
	value func(*Env) reflect.Value
}

// envLeaves lists every name of Env, from its `expr` tags.
func envLeaves() []envLeaf {
	var out []envLeaf
	var walk func(t reflect.Type, path string, get func(*Env) reflect.Value)
	walk = func(t reflect.Type, path string, get func(*Env) reflect.Value) {
		if t.Kind() != reflect.Struct {
			out = append(out, envLeaf{path: path, value: get})
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("expr")
			if name == "" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			walk(f.Type, p, func(e *Env) reflect.Value { return get(e).Field(i) })
		}
	}
	walk(reflect.TypeFor[Env](), "", func(e *Env) reflect.Value { return reflect.ValueOf(e).Elem() })
	return out
}

// poisoned returns a copy of env with every name set to another value, so
// that a field the lazy environment fails to build shows.
func poisoned(env *Env) Env {
	p := *env
	for _, leaf := range envLeaves() {
		v := leaf.value(&p)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "~poison")
		case reflect.Int:
			v.SetInt(^v.Int())
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Func:
			v.Set(reflect.ValueOf(func(string) string { return "poison" }))
		default:
			panic("unknown kind " + v.Kind().String())
		}
	}
	return p
}

// TestLazyEnv reads every name of the environment with a rule of its own,
// on a request, on a response to it and on a response relayed without it,
// in a context whose environment holds other values: the fields the rule
// reads are built, and equal the whole environment's.
func TestLazyEnv(t *testing.T) {
	p, err := build(t, "[server]\ndomains = ['example.org']\n[[stage]]\nuse = 'test_echo'")
	if err != nil {
		t.Fatal(err)
	}
	src := Source{IP: netip.MustParseAddr("127.0.0.2"), Port: 5062}
	req := parseReq(t, invite)
	bye := parseReq(t, strings.Replace(strings.Replace(invite, "INVITE", "BYE", 2), "To: <sip:bob@example.org>", "To: <sip:bob@example.org>;tag=b2", 1))
	res := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
	res.To().Params.Add("tag", "b1")
	res.AppendHeader(sip.NewHeader("X-Test", "response"))
	messages := []struct {
		name string
		new  func() interface {
			EnvSource
			Env() *Env
		}
	}{
		{"request", func() interface {
			EnvSource
			Env() *Env
		} {
			c := NewContext(p, req, src, "UDP")
			c.AuthUser = "alice"
			return c
		}},
		{"in-dialog request", func() interface {
			EnvSource
			Env() *Env
		} {
			return NewContext(p, bye, src, "TCP")
		}},
		{"response", func() interface {
			EnvSource
			Env() *Env
		} {
			c := NewResponseContext(p, req, res, false, src, "UDP")
			c.AuthUser = "alice"
			return c
		}},
		{"response without request", func() interface {
			EnvSource
			Env() *Env
		} {
			return NewResponseContext(p, nil, res, false, src, "UDP")
		}},
	}
	for _, leaf := range envLeaves() {
		text := "string(" + leaf.path + ")"
		if leaf.path == "header" {
			text = `header("X-Test")`
		}
		x, err := CompileExpr(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		for _, m := range messages {
			want, err := x.Eval(m.new().Env())
			if err != nil {
				t.Fatalf("%s on the whole %s env: %v", text, m.name, err)
			}
			lazy := m.new()
			switch c := lazy.(type) {
			case *Context:
				c.rules = &lazyEnv{Env: poisoned(c.Env())}
			case *ResponseContext:
				c.rules = &lazyEnv{Env: poisoned(c.Env())}
			}
			got, err := x.Eval(lazy)
			if err != nil {
				t.Fatalf("%s on the %s: %v", text, m.name, err)
			}
			if got != want {
				t.Errorf("%s on the %s: %q, want %q (uses %014b)", text, m.name, got, want, x.uses)
			}
		}
	}
}

// probe is a test stage: it records which fields of the rule environment
// are built when it runs, and may change the message: a header of
// requests and responses, the From user of requests, the reason phrase of
// responses.
type probe struct {
	SetHeader string `toml:"set_header"` // "Name: value"
	FromUser  string `toml:"from_user"`
	AuthUser  string `toml:"auth_user"`
	Reason    string `toml:"reason"`
	Code      int    `toml:"code"`
	RO        bool   `toml:"read_only"`

	built []envFields
	// quiet stops the recording, for stages that run concurrently.
	quiet bool
}

func (s *probe) record(l *lazyEnv) {
	if s.quiet {
		return
	}
	var built envFields
	if l != nil {
		built = l.built
	}
	s.built = append(s.built, built)
}

func (s *probe) ServeRequest(ctx *Context) (Verdict, error) {
	s.record(ctx.rules)
	s.setHeader(ctx.Request)
	if s.FromUser != "" {
		ctx.Request.From().Address.User = s.FromUser
	}
	if s.AuthUser != "" {
		ctx.AuthUser = s.AuthUser
	}
	if s.Code != 0 {
		ctx.Reply(s.Code, "Probe")
		return Replied, nil
	}
	return Continue, nil
}

func (s *probe) ServeResponse(ctx *ResponseContext) error {
	s.record(ctx.rules)
	s.setHeader(ctx.Response)
	if s.Reason != "" {
		ctx.Response.Reason = s.Reason
	}
	return nil
}

func (s *probe) setHeader(m interface {
	RemoveHeader(string) bool
	AppendHeader(sip.Header)
}) {
	if s.SetHeader != "" {
		name, value, _ := strings.Cut(s.SetHeader, ": ")
		m.RemoveHeader(name)
		m.AppendHeader(sip.NewHeader(name, value))
	}
}

func (s *probe) ReadOnly() bool { return s.RO }

func init() {
	Register(StageInfo{Name: "test_probe", Description: "test", New: func() Stage { return new(probe) }})
}

func probes(p *Pipeline) []*probe {
	var out []*probe
	for _, e := range p.stages {
		out = append(out, e.stage.(*probe))
	}
	return out
}

// TestRulesSeeChanges runs rules after stages that change the message:
// each rule sees the message as the stages before it left it.
func TestRulesSeeChanges(t *testing.T) {
	// The first stage reads From and changes it.
	const changeFrom = "[[stage]]\nuse = 'test_probe'\nwhen = 'from.user == \"alice\"'\nfrom_user = 'mallory'\n"
	// The first stage authenticates the request as alice.
	const setAlice = "[[stage]]\nuse = 'test_probe'\nwhen = 'auth.user == \"\"'\nauth_user = 'alice'\n"
	tests := []struct {
		chain string
		want  Verdict
	}{
		// A header a stage adds, read by the next stage's rule.
		{"[[stage]]\nuse = 'test_probe'\nwhen = 'header(\"X-Step\") == \"\"'\nset_header = 'X-Step: 1'\n" +
			"[[stage]]\nuse = 'test_probe'\nwhen = 'header(\"X-Step\") == \"1\"'\ncode = 403", Replied},
		{changeFrom + "[[stage]]\nuse = 'test_probe'\nwhen = 'from.user == \"mallory\"'\ncode = 403", Replied},
		{changeFrom + "[[stage]]\nuse = 'test_probe'\nwhen = 'from.user == \"alice\"'\ncode = 403", Continue},
		// A read-only stage between them changes nothing.
		{changeFrom + "[[stage]]\nuse = 'test_probe'\nread_only = true\nwhen = 'request.method == \"INVITE\"'\n" +
			"[[stage]]\nuse = 'test_probe'\nwhen = 'from.user == \"mallory\" && request.method == \"INVITE\"'\ncode = 403", Replied},
		// auth.user is "" until a stage sets Context.AuthUser, as the
		// auth stage does, then what it set, after a read-only stage too.
		{"[[stage]]\nuse = 'test_probe'\nwhen = 'auth.user != \"\"'\ncode = 403", Continue},
		{setAlice + "[[stage]]\nuse = 'test_probe'\nwhen = 'auth.user == \"alice\"'\ncode = 403", Replied},
		{setAlice + "[[stage]]\nuse = 'test_probe'\nwhen = 'auth.user == \"\"'\ncode = 403", Continue},
		{setAlice + "[[stage]]\nuse = 'test_probe'\nread_only = true\n" +
			"[[stage]]\nuse = 'test_probe'\nwhen = 'auth.user == \"alice\"'\ncode = 403", Replied},
	}
	for i, tc := range tests {
		p, err := build(t, tc.chain)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		v, err := p.ServeRequest(NewContext(p, parseReq(t, invite), Source{}, "UDP"), nil)
		if err != nil || v != tc.want {
			t.Errorf("test %d: verdict %s, error %v; want %s", i, v, err, tc.want)
		}
	}
}

// TestResponseAuthUserRule checks that auth.user on a response is its
// ResponseContext's AuthUser: the request's, as the engine hands it over.
// TestRulesSeeChanges covers it on requests.
func TestResponseAuthUserRule(t *testing.T) {
	p, err := build(t, "[[stage]]\nuse = 'test_probe'\nwhen = 'auth.user == \"alice\" && is_response'\nreason = 'Seen'")
	if err != nil {
		t.Fatal(err)
	}
	req := parseReq(t, invite)
	for _, user := range []string{"alice", ""} {
		res := sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
		rc := NewResponseContext(p, req, res, true, Source{}, "UDP")
		rc.AuthUser = user
		if err := p.ServeResponse(rc, nil); err != nil {
			t.Fatal(err)
		}
		if seen := res.Reason == "Seen"; seen != (user == "alice") {
			t.Errorf("a response to a request of auth.user %q: reason %q", user, res.Reason)
		}
	}
}

// TestResponseRulesSeeChanges is TestRulesSeeChanges on responses.
func TestResponseRulesSeeChanges(t *testing.T) {
	p, err := build(t, `[[stage]]
use = 'test_probe'
when = 'response.reason == "Ringing" && header("X-Step") == ""'
reason = 'Changed'
set_header = 'X-Step: 1'
[[stage]]
use = 'test_probe'
when = 'response.reason == "Changed" && header("X-Step") == "1"'
reason = 'Seen'`)
	if err != nil {
		t.Fatal(err)
	}
	req := parseReq(t, invite)
	res := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
	if err := p.ServeResponse(NewResponseContext(p, req, res, false, Source{}, "UDP"), nil); err != nil {
		t.Fatal(err)
	}
	if res.Reason != "Seen" {
		t.Errorf("reason %q, want %q", res.Reason, "Seen")
	}
}

// TestEnvBuiltOnce checks which fields of the rule environment each stage
// finds built: the rules build what they read, once, and a stage that may
// change the message (not read only) makes the next rule build them again.
func TestEnvBuiltOnce(t *testing.T) {
	p, err := build(t, `[[stage]]
use = 'test_probe'
read_only = true
when = 'request.method == "INVITE"'
[[stage]]
use = 'test_probe'
read_only = true
when = 'from.user == "alice" && request.method == "INVITE"'
[[stage]]
use = 'test_probe'
[[stage]]
use = 'test_probe'
read_only = true
when = 'header("X-Test") == "yes"'
[[stage]]
use = 'test_probe'
read_only = true`)
	if err != nil {
		t.Fatal(err)
	}
	ctx := NewContext(p, parseReq(t, invite), Source{}, "UDP")
	if v, err := p.ServeRequest(ctx, nil); v != Continue || err != nil {
		t.Fatalf("verdict %s, error %v", v, err)
	}
	want := []envFields{useMethod, useMethod | useFrom, useMethod | useFrom, useHeader, useHeader}
	for i, s := range probes(p) {
		if len(s.built) != 1 || s.built[0] != want[i] {
			t.Errorf("stage %d: built %s, want %014b", i+1, fmt.Sprintf("%014b", s.built), want[i])
		}
	}
	if ctx.rules != nil {
		t.Errorf("after the stages: the context still holds its environment")
	}
	if env := ctx.Env(); env.Request.Method != "INVITE" || env.Header("X-Test") != "yes" {
		t.Errorf("after the stages: method %q, X-Test %q", env.Request.Method, env.Header("X-Test"))
	}
}

// TestEnvsReused runs many messages at once through rules that read what
// differs between them: each rule sees its own message, though the
// environments go from one message to the next.
func TestEnvsReused(t *testing.T) {
	p, err := build(t, `[[stage]]
use = 'test_probe'
when = 'header("X-Test") == "yes"'
set_header = 'X-Test: no'
[[stage]]
use = 'test_probe'
when = 'from.user == header("X-User") && header("X-Test") == "no"'
code = 403`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range probes(p) {
		s.quiet = true
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 50 {
				user := fmt.Sprintf("u%d-%d", g, i)
				raw := strings.Replace(invite, "alice@", user+"@", 1) + "X-User: " + user + "\n\n"
				raw = strings.Replace(raw, "Content-Length: 0\n\n", "Content-Length: 0\n", 1)
				msg, perr := sip.ParseMessage([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
				if perr != nil {
					err = perr
					break
				}
				if v, _ := p.ServeRequest(NewContext(p, msg.(*sip.Request), Source{}, "UDP"), nil); v != Replied {
					err = fmt.Errorf("%s: verdict %s", user, v)
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
