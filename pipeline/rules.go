package pipeline

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/switchboard-sip/switchboard/config"
)

// Env is what a `when` rule sees. Every name is documented in docs/rules.md.
// On a request the response fields are zero; on a response, request holds
// the request it answers.
type Env struct {
	Request   RequestEnv  `expr:"request"`
	Response  ResponseEnv `expr:"response"`
	From      PartyEnv    `expr:"from"`
	To        PartyEnv    `expr:"to"`
	CallID    string      `expr:"call_id"`
	CSeq      CSeqEnv     `expr:"cseq"`
	InDialog  bool        `expr:"in_dialog"`
	Source    SourceEnv   `expr:"source"`
	Transport string      `expr:"transport"`
	Auth      AuthEnv     `expr:"auth"`
	// IsResponse is true while the response stages run.
	IsResponse bool `expr:"is_response"`
	// Header returns the first value of a header of the message in hand
	// (the response, on a response), or "".
	Header func(name string) string `expr:"header"`
}

// RequestEnv describes the request.
type RequestEnv struct {
	Method string `expr:"method"`
	URI    URIEnv `expr:"uri"`
}

// URIEnv describes a SIP URI.
type URIEnv struct {
	User string `expr:"user"`
	Host string `expr:"host"`
	Port int    `expr:"port"`
	// Ours is true when the URI names this proxy (see server.domains).
	Ours bool `expr:"ours"`
}

// PartyEnv describes the From or To header.
type PartyEnv struct {
	User string `expr:"user"`
	Host string `expr:"host"`
	Tag  string `expr:"tag"`
	// Display is the display name, if any.
	Display string `expr:"display"`
	// Ours is true when the URI names this proxy: one of server.domains
	// in any case, or an address it listens on (as request.uri.ours).
	Ours bool `expr:"ours"`
}

// CSeqEnv describes the CSeq header.
type CSeqEnv struct {
	Method string `expr:"method"`
	Seq    int    `expr:"seq"`
}

// ResponseEnv describes the response; zero on requests.
type ResponseEnv struct {
	Code   int    `expr:"code"`
	Reason string `expr:"reason"`
}

// SourceEnv is where the request came from.
type SourceEnv struct {
	IP   string `expr:"ip"`
	Port int    `expr:"port"`
	// NATed is true when the request came straight from a phone whose
	// top Via or Contact names another address (see DetectNAT).
	NATed bool `expr:"nated"`
	// Set is the [[set]] with a destination at the source address, or "".
	Set string `expr:"set"`
}

// AuthEnv is what the auth stage found.
type AuthEnv struct {
	// User is the user whose credentials checked out; "" before the auth
	// stage, or when it did not check the request.
	User string `expr:"user"`
}

// Rule is a compiled `when` rule.
type Rule struct {
	Text    string
	program *vm.Program
	// uses are the fields of the environment it reads.
	uses envFields
}

// CompileRule compiles a `when` rule against Env; it must return a bool.
func CompileRule(text string) (*Rule, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("the rule is empty: leave out `when` to run the stage always")
	}
	p, err := expr.Compile(text, append(ruleOptions(), expr.AsBool())...)
	if err != nil {
		return nil, fmt.Errorf("%s%s", oneLine(err.Error()), nameHint(text))
	}
	return &Rule{Text: text, program: p, uses: envUses(p.Node())}, nil
}

// Match runs the rule on a message: a Context or ResponseContext builds
// only the fields of its environment that the rule reads. A rule that
// fails at run time does not match; the error is returned so that the
// engine can count and log it.
func (r *Rule) Match(m EnvSource) (bool, error) {
	out, err := run(r.program, m.ruleEnv(r.uses))
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// Expr is a compiled expression that returns a string, for stages that
// compute a value from the message (rewrite's `value_expr`).
type Expr struct {
	Text    string
	program *vm.Program
	// uses are the fields of the environment it reads.
	uses envFields
}

// CompileExpr compiles an expression against Env that returns a string.
func CompileExpr(text string) (*Expr, error) {
	p, err := expr.Compile(text, append(ruleOptions(), expr.AsKind(reflect.String))...)
	if err != nil {
		return nil, fmt.Errorf("%s%s", oneLine(err.Error()), nameHint(text))
	}
	return &Expr{Text: text, program: p, uses: envUses(p.Node())}, nil
}

// Eval runs the expression on a message, as Rule.Match does.
func (x *Expr) Eval(m EnvSource) (string, error) {
	out, err := run(x.program, m.ruleEnv(x.uses))
	if err != nil {
		return "", err
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("the expression returned %T, not a string", out)
	}
	return s, nil
}

// machines are expr's virtual machines, reused: expr.Run makes one for
// every run.
var machines = sync.Pool{New: func() any { return new(vm.VM) }}

// run runs a compiled program on env.
func run(p *vm.Program, env *Env) (any, error) {
	m := machines.Get().(*vm.VM)
	out, err := m.Run(p, env)
	machines.Put(m)
	return out, err
}

// ruleOptions are the environment and the functions every rule and
// expression is compiled with.
func ruleOptions() []expr.Option {
	return []expr.Option{
		expr.Env(Env{}),
		expr.Function("cidr", func(params ...any) (any, error) {
			return InCIDR(params[0].(string), params[1].(string))
		}, new(func(ip, network string) (bool, error))),
	}
}

// prefixes caches parsed networks of cidr() calls: rules name a few. A rule
// that takes the network from the message could name many, so the cache
// stops growing at maxPrefixes; past it networks are parsed on each call.
var (
	prefixes    sync.Map // string -> netip.Prefix
	prefixCount atomic.Int64
)

const maxPrefixes = 1024

// InCIDR reports whether ip is inside network ("10.0.0.0/8", "::1/128", or
// a bare address). An ip that is not an address is outside every network;
// a network that does not parse is an error, so the rule fails (no match)
// and is counted.
func InCIDR(ip, network string) (bool, error) {
	var prefix netip.Prefix
	if v, ok := prefixes.Load(network); ok {
		prefix = v.(netip.Prefix)
	} else {
		// Parsed as ratelimit's allow and server.trusted_sources are: an
		// IPv4-mapped network matches the IPv4 addresses it maps.
		var err error
		if prefix, err = config.ParseNetwork(network); err != nil {
			return false, fmt.Errorf("cidr: %w", err)
		}
		if prefixCount.Load() < maxPrefixes {
			if _, loaded := prefixes.LoadOrStore(network, prefix); !loaded {
				prefixCount.Add(1)
			}
		}
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false, nil
	}
	return prefix.Contains(a.Unmap()), nil
}

// oneLine folds expr's multi-line error (message, source line, caret) into
// one line that still shows where the mistake is.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	out := strings.TrimSpace(lines[0])
	if len(lines) > 2 {
		out += " in `" + strings.TrimSpace(lines[1]) + "`"
	}
	return out
}
