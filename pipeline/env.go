package pipeline

import (
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/expr-lang/expr/ast"
)

// envFields is a set of fields of Env. A rule reads a few of them, and a
// message's rule environment is built a field at a time, as the rules that
// run on it read them: a rule on request.method costs neither the Ours
// check of the Request-URI nor the text of the source address.
type envFields uint32

const (
	useMethod      envFields = 1 << iota // request.method
	useURI                               // request.uri.user, .host, .port
	useOurs                              // request.uri.ours
	useFrom                              // from.*
	useTo                                // to.*
	useCallID                            // call_id
	useCSeq                              // cseq.*
	useInDialog                          // in_dialog
	useResponse                          // response.*
	useIsResponse                        // is_response
	useSourceIP                          // source.ip
	useSourcePort                        // source.port
	useSourceNATed                       // source.nated
	useTransport                         // transport
	useHeader                            // header()
	useAuth                              // auth.user
	useFromOurs                          // from.ours
	useToOurs                            // to.ours
	useSourceSet                         // source.set

	useAll envFields = 1<<iota - 1
)

// envPaths maps the names of the rule environment, and the paths into
// them that are worth telling apart, to the fields they read. A path that
// is not listed reads what its longest listed prefix reads.
var envPaths = map[string]envFields{
	"request":          useMethod | useURI | useOurs,
	"request.method":   useMethod,
	"request.uri":      useURI | useOurs,
	"request.uri.user": useURI,
	"request.uri.host": useURI,
	"request.uri.port": useURI,
	"request.uri.ours": useOurs,
	"response":         useResponse,
	"from":             useFrom | useFromOurs,
	"from.user":        useFrom,
	"from.host":        useFrom,
	"from.tag":         useFrom,
	"from.display":     useFrom,
	"from.ours":        useFrom | useFromOurs,
	"to":               useTo | useToOurs,
	"to.user":          useTo,
	"to.host":          useTo,
	"to.tag":           useTo,
	"to.display":       useTo,
	"to.ours":          useTo | useToOurs,
	"call_id":          useCallID,
	"cseq":             useCSeq,
	"in_dialog":        useInDialog,
	"is_response":      useIsResponse,
	"source":           useSourceIP | useSourcePort | useSourceNATed | useSourceSet,
	"source.ip":        useSourceIP,
	"source.port":      useSourcePort,
	"source.nated":     useSourceNATed,
	"source.set":       useSourceSet,
	"transport":        useTransport,
	"header":           useHeader,
	"auth":             useAuth,
	"auth.user":        useAuth,
	"$env":             useAll,
}

// envUses returns the fields of Env that a compiled rule or expression
// reads. It may name more fields than are read (all of request for
// `request[name]`), never fewer: every name of the environment in the tree
// counts, with the longest path of constant members under which it is read.
func envUses(tree ast.Node) envFields {
	// The objects of member accesses by a constant name: the access reads
	// a part of them, and its own path says which.
	inner := map[ast.Node]bool{}
	ast.Walk(&tree, visitor(func(n ast.Node) {
		if m, ok := n.(*ast.MemberNode); ok {
			if _, ok := m.Property.(*ast.StringNode); ok {
				inner[m.Node] = true
			}
		}
	}))
	var uses envFields
	ast.Walk(&tree, visitor(func(n ast.Node) {
		if !inner[n] {
			uses |= pathUses(envPath(n))
		}
	}))
	return uses
}

// visitor adapts a function to ast.Visitor.
type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }

// envPath returns the names a chain of constant member accesses reads,
// from the identifier at its root ("request", "uri", "ours"), or nil when n
// is no such chain.
func envPath(n ast.Node) []string {
	var path []string
	for {
		switch x := n.(type) {
		case *ast.IdentifierNode:
			path = append(path, x.Value)
			for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
				path[i], path[j] = path[j], path[i]
			}
			return path
		case *ast.MemberNode:
			s, ok := x.Property.(*ast.StringNode)
			if !ok {
				return nil
			}
			path = append(path, s.Value)
			n = x.Node
		default:
			return nil
		}
	}
}

// pathUses returns the fields a path reads: those of its longest listed
// prefix. A name that is not the environment's (a variable, a function
// such as cidr) reads none.
func pathUses(path []string) envFields {
	for i := len(path); i > 0; i-- {
		if uses, ok := envPaths[strings.Join(path[:i], ".")]; ok {
			return uses
		}
	}
	return 0
}

// EnvSource is what rules and expressions run on: a *Context or a
// *ResponseContext, which build the fields of their rule environment as
// the rules read them, or an *Env built whole.
type EnvSource interface {
	ruleEnv(uses envFields) *Env
}

var (
	_ EnvSource = (*Env)(nil)
	_ EnvSource = (*Context)(nil)
	_ EnvSource = (*ResponseContext)(nil)
)

// ruleEnv returns e, which has every field.
func (e *Env) ruleEnv(envFields) *Env { return e }

// lazyEnv is the rule environment of a message: taken from envs by the
// first rule that runs on it, built a field at a time as rules read them,
// and given back when the stages are done with the message.
type lazyEnv struct {
	Env
	// built are the fields of Env that describe the message as it is.
	built envFields
}

// envs are the rule environments that no message holds.
var envs = sync.Pool{New: func() any { return new(lazyEnv) }}

// missing returns the environment, and the fields of uses that its
// caller must build now: they count as built from here on.
func (l *lazyEnv) missing(uses envFields) (*Env, envFields) {
	need := uses &^ l.built
	l.built |= need
	return &l.Env, need
}

// invalidate forgets the fields built, if any, after a stage that may have
// changed the message. header() reads the message as it is when called,
// so it stays.
func (l *lazyEnv) invalidate() {
	if l != nil {
		l.built &= useHeader
	}
}

// release gives the environment, if any, back to envs, cleared so that it
// keeps no message alive.
func (l *lazyEnv) release() {
	if l != nil {
		*l = lazyEnv{}
		envs.Put(l)
	}
}

func (c *Context) invalidate()         { c.rules.invalidate() }
func (c *ResponseContext) invalidate() { c.rules.invalidate() }

// Changed tells the rule environment that a stage changed the request, for
// the rules the stage runs itself on it after the change (the dialplan
// stage's rules); the engine does the same after every stage that is not
// ReadOnly.
func (c *Context) Changed() { c.invalidate() }

// release gives the rule environment back: the stages are done with the
// message, and the engine may change it.
func (c *Context) release() {
	c.rules.release()
	c.rules = nil
}

func (c *ResponseContext) release() {
	c.rules.release()
	c.rules = nil
}

// Env returns the whole rule environment of the request. The rules of the
// stages build only the fields they read, again after a stage that may
// have changed the request. The Env is the Context's, and is reused for
// another message once ServeRequest returns: read it, do not keep it.
func (c *Context) Env() *Env { return c.ruleEnv(useAll) }

// ruleEnv returns the rule environment of the request with the fields in
// uses built.
func (c *Context) ruleEnv(uses envFields) *Env {
	if c.rules == nil {
		c.rules = envs.Get().(*lazyEnv)
	}
	env, need := c.rules.missing(uses)
	if need == 0 {
		return env
	}
	req := c.Request
	fillEnv(env, need, c.pipeline, req, &req.Recipient, c.Source, c.Transport)
	if need&useMethod != 0 {
		env.Request.Method = string(req.Method)
	}
	if need&useResponse != 0 {
		env.Response = ResponseEnv{}
	}
	if need&useIsResponse != 0 {
		env.IsResponse = false
	}
	if need&useAuth != 0 {
		env.Auth.User = c.AuthUser
	}
	if need&useHeader != 0 {
		env.Header = c.header
	}
	return env
}

// header is the rule environment's header() on a request.
func (c *Context) header(name string) string { return headerValue(c.Request, name) }

// Env returns the whole rule environment of the response, as Context.Env
// does until ServeResponse returns. Without the request (a stateless relay
// of a 2xx retransmission), the request's fields come from the response's
// own headers.
func (c *ResponseContext) Env() *Env { return c.ruleEnv(useAll) }

// ruleEnv returns the rule environment of the response with the fields in
// uses built.
func (c *ResponseContext) ruleEnv(uses envFields) *Env {
	if c.rules == nil {
		c.rules = envs.Get().(*lazyEnv)
	}
	env, need := c.rules.missing(uses)
	if need == 0 {
		return env
	}
	res := c.Response
	if req := c.Request; req != nil {
		fillEnv(env, need, c.pipeline, req, &req.Recipient, c.Source, c.Transport)
		if need&useMethod != 0 {
			env.Request.Method = string(req.Method)
		}
	} else {
		fillEnv(env, need, c.pipeline, res, &noURI, c.Source, c.Transport)
		if need&useMethod != 0 {
			env.Request.Method = ""
			if cs := res.CSeq(); cs != nil {
				env.Request.Method = string(cs.MethodName)
			}
		}
	}
	if need&useTo != 0 {
		// The response's To tag; in_dialog stays the request's.
		if to := res.To(); to != nil {
			env.To.Tag, _ = to.Params.Get("tag")
		}
	}
	if need&useResponse != 0 {
		env.Response = ResponseEnv{Code: res.StatusCode, Reason: res.Reason}
	}
	if need&useIsResponse != 0 {
		env.IsResponse = true
	}
	if need&useAuth != 0 {
		env.Auth.User = c.AuthUser
	}
	if need&useHeader != 0 {
		env.Header = c.header
	}
	return env
}

// header is the rule environment's header() on a response: it reads the
// response.
func (c *ResponseContext) header(name string) string { return headerValue(c.Response, name) }

// noURI is the Request-URI of a response relayed without its request.
var noURI sip.Uri

// headers is what the rule environment reads of a request or response.
type headers interface {
	GetHeader(name string) sip.Header
	From() *sip.FromHeader
	To() *sip.ToHeader
	CallID() *sip.CallIDHeader
	CSeq() *sip.CSeqHeader
}

// fillEnv sets the fields in need of env that come from the request m (or
// the response that stands in for it), its Request-URI uri and where it
// came from; not request.method, the response fields, nor header().
func fillEnv(env *Env, need envFields, p *Pipeline, m headers, uri *sip.Uri, src Source, transport string) {
	if need&useURI != 0 {
		env.Request.URI.User, env.Request.URI.Host, env.Request.URI.Port = uri.User, uri.Host, uri.Port
	}
	if need&useOurs != 0 {
		env.Request.URI.Ours = p.ours(uri)
	}
	if need&useFrom != 0 {
		env.From = PartyEnv{}
		if f := m.From(); f != nil {
			env.From = partyEnv(&f.Address, f.DisplayName, f.Params, need&useFromOurs != 0 && p.ours(&f.Address))
		}
	}
	if need&(useTo|useInDialog) != 0 {
		var to PartyEnv
		if t := m.To(); t != nil {
			to = partyEnv(&t.Address, t.DisplayName, t.Params, need&useToOurs != 0 && p.ours(&t.Address))
		}
		if need&useTo != 0 {
			env.To = to
		}
		if need&useInDialog != 0 {
			env.InDialog = to.Tag != ""
		}
	}
	if need&useCallID != 0 {
		env.CallID = ""
		if id := m.CallID(); id != nil {
			env.CallID = id.Value()
		}
	}
	if need&useCSeq != 0 {
		env.CSeq = CSeqEnv{}
		if cs := m.CSeq(); cs != nil {
			env.CSeq = CSeqEnv{Method: string(cs.MethodName), Seq: int(cs.SeqNo)}
		}
	}
	if need&useSourceIP != 0 {
		env.Source.IP = ""
		if src.IP.IsValid() {
			env.Source.IP = src.IP.String()
		}
	}
	if need&useSourcePort != 0 {
		env.Source.Port = src.Port
	}
	if need&useSourceNATed != 0 {
		env.Source.NATed = false
		if req, ok := m.(*sip.Request); ok {
			env.Source.NATed = DetectNAT(req, src, transport).Behind
		}
	}
	if need&useSourceSet != 0 {
		env.Source.Set = p.SourceSet(src.IP)
	}
	if need&useTransport != 0 {
		env.Transport = transport
	}
}

func partyEnv(addr *sip.Uri, display string, params sip.HeaderParams, ours bool) PartyEnv {
	e := PartyEnv{User: addr.User, Host: addr.Host, Display: display, Ours: ours}
	e.Tag, _ = params.Get("tag")
	return e
}

// messageEnv returns the whole rule environment of a message outside any
// Context.
func messageEnv(p *Pipeline, m headers, method string, uri *sip.Uri, src Source, transport string) *Env {
	env := &Env{
		Request: RequestEnv{Method: method},
		Header:  func(name string) string { return headerValue(m, name) },
	}
	fillEnv(env, useAll, p, m, uri, src, transport)
	return env
}

func headerValue(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// ours reports whether u names this proxy, by the pipeline's Ours rule (a
// pipeline built without one owns nothing).
func (p *Pipeline) ours(u *sip.Uri) bool {
	return p != nil && p.Ours != nil && p.Ours.URI(u)
}
