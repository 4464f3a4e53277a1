// Package stagetest helps test stages, in the spirit of CoreDNS's dnstest
// and Caddy's caddytest: it builds SIP messages from raw text, builds a
// pipeline of one stage or a small chain from a TOML snippet, runs messages
// through it as the engine would, and records what the stages did.
//
//	h := stagetest.Stage(t, "rewrite", `set_header = { "X-Foo" = "bar" }`)
//	res := h.Request(stagetest.Request(t, invite))
//	if res.Verdict != pipeline.Continue || res.Header("X-Foo") != "bar" {
//		t.Errorf("got %s, changed %s", res, res.Changed())
//	}
//
// The pipeline is the one pipeline.Build makes from the config, over an
// in-memory location store and a logger that discards; nothing listens and
// nothing is sent. The harness does the engine's work around the stages
// (cloning the request, running the reply through the response stages) but
// not the proxy core's: no route processing, no 100 Trying, no 403/404 when
// every stage continues, no 500 when a stage fails, no forwarding.
package stagetest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// Defaults of a harness.
const (
	// DefaultDomain is the domain of the [server] section added to a
	// snippet that has none.
	DefaultDomain = "example.org"
	// DefaultListen is the socket of that [server] section.
	DefaultListen = "udp://127.0.0.1:5060"
	// DefaultSource is where requests come from.
	DefaultSource = "192.0.2.10:5060"
	// DefaultTransport is the transport they come over.
	DefaultTransport = "UDP"
	// DefaultConfigPath names the config in errors:
	// `test.toml: stage 1 (rewrite): ...`.
	DefaultConfigPath = "test.toml"
)

// Option changes how a harness is built.
type Option func(*options)

type options struct {
	svc       *pipeline.Services
	store     location.Store
	storeSet  bool
	domains   []string
	aor       string
	source    string
	transport string
	now       func() time.Time
	log       *slog.Logger
	path      string
}

// WithServices builds the pipeline over svc instead of fresh services, for
// a test of what outlives a reload: two harnesses over one svc are two
// pipelines in a row, and Services.Shared gives both the same value. A nil
// Log is set to the harness's logger and nil Sockets to those of the
// config's server.listen. The harness does not close svc: the test owns it.
func WithServices(svc *pipeline.Services) Option {
	return func(o *options) { o.svc = svc }
}

// WithLocation makes store the location store; nil means none, for a test
// of a stage that needs one.
func WithLocation(store location.Store) Option {
	return func(o *options) { o.store, o.storeSet = store, true }
}

// WithDomains sets server.domains, replacing those of the config.
func WithDomains(domains ...string) Option {
	return func(o *options) { o.domains = domains }
}

// WithAOR sets server.aor, "user" or "user@domain", replacing the config's.
func WithAOR(aor string) Option {
	return func(o *options) { o.aor = aor }
}

// WithSource sets the "ip:port" requests come from (DefaultSource).
func WithSource(addr string) Option {
	return func(o *options) { o.source = addr }
}

// WithTransport sets the transport requests come over, "UDP" (the default)
// or "TCP".
func WithTransport(transport string) Option {
	return func(o *options) { o.transport = strings.ToUpper(transport) }
}

// WithTime sets the clock: Services.Clock, which stages read through
// Services.Now, and Context.Received of every request. Give it a Clock's
// Now for a clock the test moves. Without it the clock is Services.Clock
// of WithServices, or time.Now.
func WithTime(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithLogger sets the logger of the services and of every Context, for a
// test that wants to see or check what the stages log. The default
// discards.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// WithConfigPath sets the path the config claims to be read from: errors
// name it, and a stage's relative file names (BuildContext.Path) resolve
// against its directory, "testdata/config.toml" say.
func WithConfigPath(path string) Option {
	return func(o *options) { o.path = path }
}

// Harness is a built pipeline to run messages through. Its methods are safe
// to call from several goroutines, as the engine calls a pipeline.
type Harness struct {
	// Pipeline is the pipeline built from the config.
	Pipeline *pipeline.Pipeline
	// Services are the services it borrows; Services.Location is the
	// location store.
	Services *pipeline.Services

	t         testing.TB
	source    pipeline.Source
	transport string
	now       func() time.Time
	log       *slog.Logger

	closeOnce sync.Once
	closeErr  error
	ownsSvc   bool
}

// Chain builds a pipeline from a TOML snippet: a whole config, or just
// [[stage]] tables. A snippet without [server] gets one with
// domains = [DefaultDomain] and listen = [DefaultListen]. A snippet that
// does not build fails the test with every mistake. The pipeline is cleaned
// up, and the services closed, when the test ends.
func Chain(t testing.TB, toml string, opts ...Option) *Harness {
	t.Helper()
	h, err := Build(t, toml, opts...)
	if err != nil {
		t.Fatalf("stagetest: the chain does not build:\n%v\nconfig:\n%s", err, toml)
	}
	return h
}

// Stage builds a chain of one stage of type name, configured by keysTOML,
// the keys of its [[stage]] table (a `when` rule too), one per line.
func Stage(t testing.TB, name, keysTOML string, opts ...Option) *Harness {
	t.Helper()
	if _, ok := pipeline.Lookup(name); !ok {
		t.Fatalf("stagetest: no stage %q is registered: import its package (blank-import stages/all for the built-in ones)", name)
	}
	return Chain(t, StageTOML(name, keysTOML), opts...)
}

// BuildStage is Stage for a test of config mistakes: it returns the error
// that pipeline.Build returns instead of failing the test.
func BuildStage(t testing.TB, name, keysTOML string, opts ...Option) (*Harness, error) {
	t.Helper()
	return Build(t, StageTOML(name, keysTOML), opts...)
}

// StageTOML returns the [[stage]] table of a stage of type name with the
// given keys.
func StageTOML(name, keysTOML string) string {
	return "[[stage]]\nuse = " + strconv.Quote(name) + "\n" + keysTOML + "\n"
}

// Build is Chain for a test of config mistakes: it returns the error of
// config.Parse or pipeline.Build (a *config.Errors, whose lines read
// `test.toml: stage 1 (rewrite): key: ...`) instead of failing the test.
func Build(t testing.TB, toml string, opts ...Option) (*Harness, error) {
	t.Helper()
	o := options{source: DefaultSource, transport: DefaultTransport, path: DefaultConfigPath}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	src, err := netip.ParseAddrPort(o.source)
	if err != nil {
		t.Fatalf("stagetest: WithSource(%q): not an ip:port: %v", o.source, err)
	}
	if !hasServer(toml) {
		toml = defaultServer(o.domains) + toml
	}
	cfg, err := config.Parse(o.path, []byte(toml))
	if err != nil {
		return nil, err
	}
	if o.domains != nil {
		cfg.Server.Domains = o.domains
	}
	if o.aor != "" {
		cfg.Server.AOR = o.aor
	}
	svc, own := o.svc, o.svc == nil
	if own {
		svc = &pipeline.Services{Location: location.NewMemory()}
	}
	if o.storeSet {
		svc.Location = o.store
	}
	if svc.Log == nil {
		svc.Log = o.log
	}
	if o.now != nil {
		svc.Clock = o.now
	}
	if svc.Sockets == nil {
		svc.Sockets = sockets(cfg)
	}
	p, err := pipeline.Build(cfg, svc)
	if err != nil {
		if own {
			_ = svc.Close()
		}
		return nil, err
	}
	h := &Harness{
		Pipeline:  p,
		Services:  svc,
		t:         t,
		source:    pipeline.Source{IP: src.Addr().Unmap(), Port: int(src.Port())},
		transport: o.transport,
		now:       svc.Now,
		log:       o.log,
		ownsSvc:   own,
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("stagetest: %v", err)
		}
	})
	return h, nil
}

// Close cleans up the pipeline and closes the services (unless they came
// from WithServices) before the test ends, for a test that reads what the
// stages write on Cleanup, such as their files. Later calls, and the
// cleanup at the test's end, do nothing.
func (h *Harness) Close() error {
	h.closeOnce.Do(func() {
		var errs []error
		if err := h.Pipeline.Cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
		if h.ownsSvc {
			if err := h.Services.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing the services: %w", err))
			}
		}
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

// Location returns the location store.
func (h *Harness) Location() location.Store { return h.Services.Location }

// defaultServer is the [server] section of a snippet without one.
func defaultServer(domains []string) string {
	if domains == nil {
		domains = []string{DefaultDomain}
	}
	quoted := make([]string, len(domains))
	for i, d := range domains {
		quoted[i] = strconv.Quote(d)
	}
	return "[server]\ndomains = [" + strings.Join(quoted, ", ") + "]\nlisten = [" + strconv.Quote(DefaultListen) + "]\n\n"
}

// hasServer reports whether a snippet sets the server section: a [server]
// table, or a server key before the first table.
func hasServer(toml string) bool {
	top := true
	for _, line := range strings.Split(toml, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			inner := strings.TrimSpace(strings.Trim(line[:strings.IndexByte(line+"#", '#')], " \t[]"))
			if inner == "server" && !strings.HasPrefix(line, "[[") {
				return true
			}
			top = false
			continue
		}
		if top && strings.HasPrefix(line, "server") {
			rest := strings.TrimSpace(strings.TrimPrefix(line, "server"))
			if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ".") {
				return true
			}
		}
	}
	return false
}

// sockets returns the sockets of the config's server.listen, as the
// command opens them.
func sockets(cfg *config.File) []pipeline.Socket {
	var out []pipeline.Socket
	for _, l := range cfg.Server.Listen {
		parsed, err := config.ParseListen(l)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(parsed.Host)
		if err != nil {
			ip = netip.IPv4Unspecified()
		}
		out = append(out, pipeline.Socket{Transport: strings.ToUpper(parsed.Network), Addr: netip.AddrPortFrom(ip, uint16(parsed.Port))})
	}
	return out
}

// String describes the harness's stages, for messages.
func (h *Harness) String() string {
	return fmt.Sprintf("chain %s", strings.Join(h.Pipeline.Stages(), ", "))
}
