package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// Pipeline is an immutable chain of stages built from one config. A
// transaction keeps the Pipeline it started on until it ends; a reload
// builds a new one and swaps it in.
type Pipeline struct {
	// Config is the config it was built from.
	Config *config.File
	// Services are the long-lived services it borrows.
	Services *Services
	// Ours decides whether a URI names this proxy.
	Ours *Ours

	stages   []*entry
	requests []*entry
	replies  []*entry
	packets  []PacketStage

	aorByDomain bool
	files       []string
	advHost     string
	advPort     int
	// shared are the keys of the values the stages took from
	// Services.Shared (see Share), which Cleanup releases.
	shared []string
	// members are the destinations of the sets, for source.set, in the
	// order of their sets in the file.
	members []setMember

	// inflight counts the transactions running on the pipeline.
	inflight struct {
		mu      sync.Mutex
		n       int
		retired bool
		idle    chan struct{} // closed when n drops to 0, while Wait waits
	}

	traceStages   bool
	traceMessages bool
	traceRule     *Rule
	captureRule   *Rule
}

// entry is one configured stage.
type entry struct {
	index int
	name  string
	label string
	rule  *Rule
	stage Stage
	req   RequestStage
	res   ResponseStage
	// readOnly is true for a stage that changes nothing a rule reads (see
	// ReadOnly): the rule environment built before it stays valid.
	readOnly bool

	// ruleFailures counts runs of the rule that failed (and so did not match).
	ruleFailures atomic.Int64
	// metrics are the stage's Prometheus counters, nil without metrics.
	metrics *metrics.Stage
}

// RuleFailures returns, per stage label, how many times its rule failed at
// run time (a failed rule counts as no match).
func (p *Pipeline) RuleFailures() map[string]int64 {
	out := map[string]int64{}
	for _, e := range p.stages {
		if n := e.ruleFailures.Load(); n > 0 {
			out[e.label] = n
		}
	}
	return out
}

// BuildContext is what Provision sees.
type BuildContext struct {
	// Services are the long-lived services.
	Services *Services
	// Pipeline is the pipeline being built: Ours and AORKey already work.
	Pipeline *Pipeline
	// Stage is the stage's own config entry.
	Stage config.Stage
	// ConfigDir is the directory of the config file, for relative paths
	// of files a stage reads.
	ConfigDir string
	// StateDir is the folder for relative paths of files a stage writes:
	// server.state_dir, or the config's folder (config.File.StateDir).
	StateDir string
	// Log is the logger, with the stage's label.
	Log *slog.Logger
}

// Watch makes a file the stage loads (a user list, say) part of the config:
// an edit to it reloads the config, as an edit to config.toml does.
func (b *BuildContext) Watch(path string) {
	b.Pipeline.files = append(b.Pipeline.files, path)
}

// Files returns the files the pipeline was built from: the config file and
// the files its stages load.
func (p *Pipeline) Files() []string {
	return append([]string{p.Config.Path}, p.files...)
}

// Path resolves a file name from the config relative to its directory.
func (b *BuildContext) Path(name string) string {
	if name == "" || strings.HasPrefix(name, "/") || b.ConfigDir == "" {
		return name
	}
	return b.ConfigDir + "/" + name
}

// StatePath resolves the name of a file a stage writes (a call log, say):
// a relative name is taken from StateDir, or from ConfigDir without one.
func (b *BuildContext) StatePath(name string) string {
	if b.StateDir == "" || name == "" || strings.HasPrefix(name, "/") {
		return b.Path(name)
	}
	return b.StateDir + "/" + name
}

// Build decodes, provisions and validates every stage of cfg into a new
// Pipeline. It returns every mistake it finds as *config.Errors, each line a
// path: `config.toml: stage 3 (rewrite): when: ...`. A pipeline that fails
// to build is cleaned up and nothing of it stays running.
func Build(cfg *config.File, svc *Services) (*Pipeline, error) {
	errs := &config.Errors{File: cfg.Path, Positions: cfg.Positions}
	p := &Pipeline{Config: cfg, Services: svc, aorByDomain: cfg.Server.AOR == "user@domain"}
	p.advHost, p.advPort = advertised(cfg.Server.Advertise, svc)
	p.Ours = NewOurs(cfg.Server.Domains, svc.Sockets, svc.LocalAddrs, p.advHost, p.advPort)

	p.traceStages, p.traceMessages = cfg.Log.Trace, cfg.Log.TraceMessages
	if cfg.Log.TraceWhen != "" {
		r, err := CompileRule(cfg.Log.TraceWhen)
		if err != nil {
			errs.AddAt("log.trace_when", fmt.Errorf("log: trace_when: %w", err))
		}
		p.traceRule = r
	}
	p.buildCapture(cfg.Capture, errs)
	dir := ""
	if i := strings.LastIndex(cfg.Path, "/"); i >= 0 {
		dir = cfg.Path[:i]
	}
	sets := make([]string, 0, len(cfg.Sets))
	for _, s := range cfg.Sets {
		sets = append(sets, s.Name)
	}
	for _, sc := range cfg.Stages {
		e, err := p.buildStage(sc, dir, cfg.StateDir())
		if e != nil {
			p.stages = append(p.stages, e)
			if v, ok := e.stage.(SetValidator); ok && len(err) == 0 {
				if verr := v.ValidateSets(sets); verr != nil {
					err = append(err, verr)
				}
			}
		}
		for _, err := range err {
			errs.AddAt(sc.Path(config.CountFromOne(config.ErrorKey(err))), fmt.Errorf("%s: %w", sc.Label(), err))
		}
	}
	p.checkSourceSets(sets, errs)
	p.checkOrder(errs)
	if errs.Len() > 0 {
		p.Cleanup()
		return nil, errs
	}
	return p, nil
}

func (p *Pipeline) buildStage(sc config.Stage, dir, stateDir string) (*entry, []error) {
	info, ok := Lookup(sc.Use)
	if !ok {
		var names []string
		for _, s := range Stages() {
			names = append(names, s.Name)
		}
		return nil, []error{fmt.Errorf("use: unknown stage type %q%s (registered: %s)", sc.Use, config.DidYouMean(sc.Use, names), strings.Join(names, ", "))}
	}
	e := &entry{index: sc.Index, name: sc.Use, label: sc.Label(), stage: info.New()}
	e.metrics = p.Services.Metrics.Stage(fmt.Sprintf("%d:%s", sc.Index, sc.Use))
	e.req, _ = e.stage.(RequestStage)
	e.res, _ = e.stage.(ResponseStage)
	var errs []error
	if sc.When != "" {
		r, err := CompileRule(sc.When)
		if err != nil {
			errs = append(errs, fmt.Errorf("when: %w", err))
		}
		e.rule = r
	}
	errs = append(errs, config.DecodeStrict(sc.Keys, e.stage)...)
	if len(errs) > 0 {
		return e, errs
	}
	// Validate checks the decoded settings before Provision acts on them:
	// a stage's Provision may rely on settings that Validate accepted.
	if v, ok := e.stage.(Validator); ok {
		if err := v.Validate(); err != nil {
			return e, splitErrors(err)
		}
	}
	if pr, ok := e.stage.(Provisioner); ok {
		b := &BuildContext{Services: p.Services, Pipeline: p, Stage: sc, ConfigDir: dir, StateDir: stateDir, Log: p.Services.Log.With("stage", e.label)}
		if err := pr.Provision(b); err != nil {
			return e, splitErrors(err)
		}
	}
	if ro, ok := e.stage.(ReadOnly); ok {
		e.readOnly = ro.ReadOnly()
	}
	if e.req != nil {
		p.requests = append(p.requests, e)
	}
	if e.res != nil {
		p.replies = append(p.replies, e)
	}
	if ps, ok := e.stage.(PacketStage); ok {
		p.packets = append(p.packets, ps)
	}
	return e, nil
}

// splitErrors turns an errors.Join of several mistakes into one error each,
// so that every mistake gets its own line with the stage's label.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkOrder rejects a terminal stage that is not the last request stage.
func (p *Pipeline) checkOrder(errs *config.Errors) {
	for i, e := range p.requests {
		if t, ok := e.stage.(Terminal); ok && t.Terminal() && i != len(p.requests)-1 {
			next := p.requests[i+1]
			errs.AddAt(fmt.Sprintf("stage[%d]", e.index), fmt.Errorf("%s: is terminal (it ends every request it runs on) but %s comes after it: move it to the end", e.label, next.label))
		}
	}
}

// Cleanup releases every stage's resources, then the shared values the
// stages took (see Share), newest first: the last pipeline to hold one
// destructs it. It runs when a pipeline is retired, or after a failed
// build.
func (p *Pipeline) Cleanup() error {
	var errs []error
	for _, e := range p.stages {
		if c, ok := e.stage.(CleanerUpper); ok {
			if err := c.Cleanup(); err != nil {
				errs = append(errs, fmt.Errorf("%s: cleanup: %w", e.label, err))
			}
		}
	}
	keys := p.shared
	p.shared = nil
	for i := len(keys) - 1; i >= 0; i-- {
		if err := p.Services.Shared.Release(keys[i]); err != nil {
			errs = append(errs, fmt.Errorf("shared %q: %w", keys[i], err))
		}
	}
	return errors.Join(errs...)
}

// Traced reports whether the stage trace is on for the message whose rule
// environment env returns: [log] trace, or a user traced live. It costs a
// field read and a pointer load when both are off.
func (p *Pipeline) Traced(env func() *Env) bool {
	return p.traced(p.traceStages, env)
}

// TracedMessage reports whether the raw message trace is on for a message;
// env is called only when a trace_when rule or a user traced live needs it.
func (p *Pipeline) TracedMessage(env func() *Env) bool {
	return p.traced(p.traceMessages, env)
}

func (p *Pipeline) traced(on bool, env func() *Env) bool {
	if p.Services != nil && p.Services.Traces.Match(env) {
		return true
	}
	return on && (p.traceRule == nil || p.matchTrace(env()))
}

func (p *Pipeline) matchTrace(env *Env) bool {
	if env == nil {
		return false
	}
	ok, _ := p.traceRule.Match(env)
	return ok
}

// MessageEnv returns the rule environment of a message outside any
// Context (the raw message trace).
func (p *Pipeline) MessageEnv(m sip.Message) *Env {
	switch m := m.(type) {
	case *sip.Request:
		return messageEnv(p, m, string(m.Method), &m.Recipient, Source{}, m.Transport())
	case *sip.Response:
		method := ""
		if cs := m.CSeq(); cs != nil {
			method = string(cs.MethodName)
		}
		env := messageEnv(p, m, method, &sip.Uri{}, Source{}, m.Transport())
		env.IsResponse = true
		env.Response = ResponseEnv{Code: m.StatusCode, Reason: m.Reason}
		return env
	}
	return nil
}

// HasPacketStages reports whether any stage screens raw traffic.
func (p *Pipeline) HasPacketStages() bool { return len(p.packets) > 0 }

// AllowPacket asks every PacketStage whether data from src may be parsed.
func (p *Pipeline) AllowPacket(src netip.AddrPort, transport string) bool {
	for _, ps := range p.packets {
		if !ps.AllowPacket(src, transport) {
			return false
		}
	}
	return true
}

// Hold marks a transaction as running on p, and reports whether it may:
// once Wait has seen no transaction left, p is retired for good and Hold
// returns false (the caller takes the current pipeline instead). Release
// ends a held transaction.
func (p *Pipeline) Hold() bool {
	p.inflight.mu.Lock()
	defer p.inflight.mu.Unlock()
	if p.inflight.retired {
		return false
	}
	p.inflight.n++
	return true
}

// Release ends a transaction that Hold started.
func (p *Pipeline) Release() {
	p.inflight.mu.Lock()
	defer p.inflight.mu.Unlock()
	p.inflight.n--
	if p.inflight.n == 0 && p.inflight.idle != nil {
		close(p.inflight.idle)
		p.inflight.idle = nil
	}
}

// Wait blocks until every transaction that started on p has ended, and
// retires p: no transaction starts on it after that. The engine calls it
// once p is no longer the current pipeline.
func (p *Pipeline) Wait() {
	p.inflight.mu.Lock()
	for p.inflight.n > 0 {
		idle := make(chan struct{})
		p.inflight.idle = idle
		p.inflight.mu.Unlock()
		<-idle
		p.inflight.mu.Lock()
	}
	p.inflight.retired = true
	p.inflight.mu.Unlock()
}

// AORKey returns the address-of-record key of a URI: the user name alone,
// or user@domain when server.aor = "user@domain". A URI without a user is
// keyed by its host.
func (p *Pipeline) AORKey(u *sip.Uri) string {
	user := u.User
	if user == "" {
		return strings.ToLower(u.Host)
	}
	if p.aorByDomain {
		return user + "@" + strings.ToLower(u.Host)
	}
	return user
}

// Advertised returns the host and port the proxy puts in Record-Route and
// Via for the given transport: the first listener of that transport's own
// advertised name, or server.advertise.
func (p *Pipeline) Advertised(transport string) (string, int) {
	port := p.advPort
	for _, s := range p.Services.Sockets {
		if strings.EqualFold(s.Transport, transport) {
			if h, port := s.advertised(); h != "" {
				return h, port
			}
			if p.Config.Server.Advertise == "" || !strings.Contains(p.Config.Server.Advertise, ":") {
				port = int(s.Addr.Port())
			}
			break
		}
	}
	return p.advHost, port
}

// Stages returns the labels of the configured stages, in order.
func (p *Pipeline) Stages() []string {
	out := make([]string, len(p.stages))
	for i, e := range p.stages {
		out[i] = e.label
	}
	return out
}

// advertised picks the host and port for Record-Route and Via.
func advertised(setting string, svc *Services) (string, int) {
	host, port := "", 0
	if setting != "" {
		h, ps, err := net.SplitHostPort(setting)
		if err != nil {
			h = strings.Trim(setting, "[]")
		} else {
			port, _ = strconv.Atoi(ps)
		}
		host = h
	}
	if len(svc.Sockets) > 0 {
		s := svc.Sockets[0]
		if port == 0 {
			port = int(s.Addr.Port())
		}
		if host == "" {
			if a := s.Addr.Addr(); !a.IsUnspecified() {
				host = a.Unmap().String()
			} else {
				host = firstRoutable(svc.LocalAddrs, a.Is6() && !a.Is4In6())
			}
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if port == 0 {
		port = 5060
	}
	return host, port
}

// firstRoutable returns the first non-loopback address of the host, IPv4
// unless want6.
func firstRoutable(addrs []netip.Addr, want6 bool) string {
	for _, a := range addrs {
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.Is6() != want6 {
			continue
		}
		return a.String()
	}
	if want6 {
		return "::1"
	}
	return "127.0.0.1"
}
