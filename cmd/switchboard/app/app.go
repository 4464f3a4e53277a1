// Package app is the switchboard command: flags, subcommands, logging,
// signals and reloads. A binary with extra stages imports them and calls
// Main, as cmd/switchboard and examples/customstage do.
//
//	switchboard [run] [-config config.toml] [-listen udp://127.0.0.1:5060]...
//	switchboard validate [-config config.toml | config.toml]
//	switchboard stages
//	switchboard version
//	switchboard store check FILE
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
	"github.com/switchboard-sip/switchboard/cmd/switchboard/logs"
	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/destinations"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// watchDebounce is how long the config must stay unchanged after an edit
// before it is reloaded: editors write in several steps.
const watchDebounce = 150 * time.Millisecond

// listFlag is a repeatable -listen flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// run is `switchboard [run]`: it loads the config and serves until a
// SIGINT or SIGTERM.
func run(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run")
	cfgPath := fs.String("config", "config.toml", "the config file")
	watch := fs.Bool("watch", true, "reload the config when the file changes (SIGHUP reloads either way)")
	version := fs.Bool("version", false, "print the version and exit, as switchboard version does")
	var listens listFlag
	fs.Var(&listens, "listen", "a socket to listen on, replacing server.listen (repeatable): udp://127.0.0.1:5060, tcp://[::1]:5070, tls://0.0.0.0:5061, ws://0.0.0.0:8080/sip, wss://0.0.0.0:8443/sip")
	if _, code, ok := parseFlags(fs, args, 0, stdout, stderr); !ok {
		return code
	}
	if *version {
		return printVersion(nil, stdout, stderr)
	}
	file, cfg, err := load(*cfgPath, listens)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	// The log file may lie in state_dir, so it is made first.
	if err := makeStateDir(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: server: state_dir: %v\n", cfg.Path, err)
		return 1
	}
	lg := logs.New(stderr)
	if err := lg.Apply(cfg.Log, cfg.StateDir()); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.Path, err)
		return 1
	}
	defer lg.Close()
	slog.SetDefault(lg.Logger)
	return serve(cfg, file.Server.Listen, *watch, lg)
}

// load reads the config file and returns it as written and with the
// -listen flags applied.
func load(path string, listens []string) (file, cfg *config.File, err error) {
	file, err = config.Load(path)
	if err != nil {
		if file != nil {
			_, err = checkAll(file, err)
		}
		return nil, nil, err
	}
	cfg, err = withListens(file, listens)
	return file, cfg, err
}

// withListens returns the config with the -listen flags in place of the
// file's listen list.
func withListens(file *config.File, listens []string) (*config.File, error) {
	cfg := *file
	if len(listens) > 0 {
		errs := &config.Errors{File: "-listen"}
		for _, err := range config.CheckListens(listens) {
			errs.Add(errors.Unwrap(err))
		}
		if err := config.CheckHTTPListen(listens, file.HTTP.Listen); err != nil {
			errs.Add(err)
		}
		if errs.Len() > 0 {
			return nil, errs
		}
		cfg.Server.Listen = listens
	}
	return &cfg, nil
}

func serve(cfg *config.File, fileListen []string, watch bool, lg *logs.Logger) int {
	log := lg.Logger
	location.SetRedisLogger(log)
	store, err := openStore(cfg, log)
	if err != nil {
		lg.Failed("starting", fmt.Errorf("%s: store: %w", cfg.Path, err))
		return 1
	}
	if r, ok := store.(*location.Redis); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := r.Ping(ctx); err != nil {
			log.Warn("the location store is not reachable yet: requests that need it get 503 until it is", "error", err)
		}
		cancel()
	}
	key, err := dialogKey(cfg.StateDir())
	if err != nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Warn("no lasting key for signing Record-Routes: dialogs in progress will not survive a restart", "error", err)
	}
	dialogs, err := dialog.Open(cfg.Store, cfg.StateDir(), key, time.Now())
	if err != nil {
		_ = store.Close()
		lg.Failed("starting", fmt.Errorf("%s: dialog store: %w", cfg.Path, err))
		return 1
	}
	stopCopies := func() {}
	if b, ok := store.(*location.Bolt); ok {
		stopCopies = keepCopies(b, log)
		defer stopCopies()
	}
	svc := &pipeline.Services{Location: store, Dialogs: dialogs, Log: log, LocalAddrs: localAddrs(), DialogKey: key, Traces: &pipeline.TraceUsers{}}
	svc.NodeID = startNode(cfg, log)
	// A start that fails after this point closes the services too: the
	// dialog store writes back the dialogs it read at start.
	closed := false
	defer func() {
		if !closed {
			_ = svc.Close()
		}
	}()
	gc := &collector{}
	gc.apply(cfg.Server.MemoryLimit, cfg.Server.GCHeadroom, log)
	defer gc.stop()
	stopCerts := make(chan struct{})
	defer close(stopCerts)
	certStore, err := openCerts(cfg, log, stopCerts)
	if err != nil {
		lg.Failed("starting", err)
		return 1
	}
	eng, err := engine.New(svc, log, engine.Options{Linger: time.Duration(cfg.Server.Linger), Certs: certStore, DNS: cfg.DNS.Resolver()})
	if err != nil {
		lg.Failed("starting", err)
		return 1
	}
	g := gauges(store, svc, eng)
	if certStore != nil {
		g.CertificateExpiry = certStore.Expiry
	}
	svc.Metrics = metrics.New(g)
	var listens []config.Listen
	for _, l := range cfg.Server.Listen {
		parsed, _ := config.ParseListen(l)
		listens = append(listens, parsed)
	}
	eng.UDPReceiveBuffer = cfg.Server.UDPReceiveBuffer
	rec := recorderFor(cfg.HTTP)
	if rec != nil {
		eng.Record(rec)
	}
	eng.Descriptors = raiseNoFile(cfg.Server, log)
	if err := eng.Listen(listens); err != nil {
		lg.Failed("starting", err)
		return 1
	}
	p, err := pipeline.Build(cfg, svc)
	if err != nil {
		for _, line := range lines(err) {
			lg.Failed("config", errors.New(line))
		}
		_ = eng.Shutdown(context.Background())
		return 1
	}
	eng.Use(p)
	eng.Start()
	svc.Metrics.Config(cfg.Hash)
	warnOpen(cfg, log)
	// Signals are caught before the proxy says it is ready: a SIGTERM
	// sent as soon as it is must stop it gracefully, not kill it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	r := &reloader{path: cfg.Path, listen: cfg.Server.Listen, file: fileListen, store: cfg.Store, stateDir: cfg.Server.StateDir, controlSocket: cfg.Server.ControlSocket, tls: cfg.TLS, http: cfg.HTTP, linger: cfg.Server.Linger, udpBuffer: cfg.Server.UDPReceiveBuffer, gc: gc, eng: eng, svc: svc, log: log, logs: lg, hash: cfg.Hash}
	r.text = readRunning(cfg.Path, cfg.Hash)
	ops := &operations{eng: eng, svc: svc, r: r, logs: lg, rec: rec}
	ctlSocket, err := startControl(ctl.SocketPath(cfg), ops, log)
	if err != nil {
		lg.Failed("starting", err)
		_ = eng.Shutdown(context.Background())
		return 1
	}
	defer ctlSocket.stop()
	if watch {
		w, err := config.NewWatcher(watchDebounce,
			func(path string) { r.reload("file changed: " + path) },
			func(err error) { log.Warn("watching the config", "error", err) })
		if err != nil {
			lg.Failed("watching the config", err)
			return 1
		}
		defer w.Close()
		r.watcher = w
		if err := w.Watch(p.Files()...); err != nil {
			lg.Failed("watching the config", err)
			return 1
		}
	}
	if cfg.HTTP.Listen != "" {
		httpCfg, web := startConsole(cfg, ops, log)
		a, err := startAdmin(httpCfg, ops, web, certStore, log)
		if err != nil {
			lg.Failed("starting", fmt.Errorf("%s: http: listen: %w", cfg.Path, err))
			_ = eng.Shutdown(context.Background())
			return 1
		}
		defer a.stop()
	}
	// Ready once every door is open: SIP, the control socket, the admin
	// listener.
	log.Info("ready", "version", BuildVersion().String(), "config", cfg.Path, "hash", short(cfg.Hash), "stages", strings.Join(p.Stages(), ", "))
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			// Reopen log files first, so that logrotate works even when
			// the reload that SIGHUP also asks for fails.
			reopen(svc, log)
			if err := lg.Reopen(); err != nil {
				log.Error("reopen", "service", "log", "error", err)
			}
			if certStore != nil {
				certStore.Reload()
			}
			r.reload("SIGHUP")
			continue
		}
		log.Info("stopping", "signal", sig.String(), "drain_timeout", cfg.Server.DrainTimeout.String())
		break
	}
	signal.Stop(sigs)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.DrainTimeout.D())
	defer cancel()
	err = eng.Shutdown(ctx)
	stopCopies()
	closed = true
	if cerr := svc.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		log.Warn("stopped", "error", err)
		return 0
	}
	log.Info("stopped")
	return 0
}

// reopen reopens every shared value that writes to a file.
func reopen(svc *pipeline.Services, log *slog.Logger) {
	svc.Shared.Range(func(key string, v any) {
		if r, ok := v.(interface{ Reopen() error }); ok {
			if err := r.Reopen(); err != nil {
				log.Error("reopen", "service", key, "error", err)
			}
		}
	})
}

// warnOpen warns while no stage authenticates anyone.
func warnOpen(cfg *config.File, log *slog.Logger) {
	for _, s := range cfg.Stages {
		if s.Use == "auth" {
			return
		}
	}
	log.Warn("no authentication is configured: anyone who reaches this proxy can register as any user and call through it")
}

// validate builds the whole pipeline without opening sockets.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate")
	cfgPath := fs.String("config", "config.toml", "the config file (or give it as the argument)")
	var listens listFlag
	fs.Var(&listens, "listen", "a socket, replacing server.listen (repeatable)")
	pos, code, ok := parseFlags(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) == 1 {
		if flagSet(fs, "config") {
			return usageError(stderr, "validate", "the config is both -config %s and %s: give one", *cfgPath, pos[0])
		}
		*cfgPath = pos[0]
	}
	file, err := config.Load(*cfgPath)
	if file == nil {
		printErrors(stderr, err)
		return 1
	}
	cfg, lerr := withListens(file, listens)
	if lerr != nil {
		cfg = file
	}
	stages, err := checkAll(cfg, errors.Join(err, lerr))
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	if errs := checkCerts(cfg.TLS, cfg.Path, time.Now(), stdout); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		return 1
	}
	checkConsole(cfg, stdout)
	fmt.Fprintf(stdout, "%s: ok (%d stages: %s)\n", cfg.Path, len(stages), strings.Join(stages, ", "))
	return 0
}

// flagSet reports whether the flag was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// listStages prints every registered stage with its description and keys.
func listStages(args []string, stdout, stderr io.Writer) int {
	if _, code, ok := parseFlags(newFlags("stages"), args, 0, stdout, stderr); !ok {
		return code
	}
	for _, info := range pipeline.Stages() {
		fmt.Fprintf(stdout, "%-14s %s\n", info.Name, info.Description)
		if keys := pipeline.StageKeys(info); len(keys) > 0 {
			fmt.Fprintf(stdout, "%-14s keys: %s\n", "", strings.Join(keys, ", "))
		}
	}
	return 0
}

// checkAll builds the stages of cfg as validate does, and returns their
// labels, or their mistakes after err, those its file had: every mistake
// is listed in one pass, [server] and stages together.
func checkAll(cfg *config.File, err error) ([]string, error) {
	stages, serr := pipeline.Check(cfg, localAddrs())
	if err != nil || serr != nil {
		return nil, errors.Join(err, serr)
	}
	return stages, nil
}

func printErrors(w io.Writer, err error) {
	for _, line := range lines(err) {
		fmt.Fprintln(w, line)
	}
}

// lines returns one line per mistake: of each *config.Errors, and of each
// error that errors.Join joined.
func lines(err error) []string {
	if ce, ok := err.(*config.Errors); ok {
		return ce.Lines()
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, lines(e)...)
		}
		return out
	}
	var ce *config.Errors
	if errors.As(err, &ce) {
		return ce.Lines()
	}
	return []string{err.Error()}
}

// localAddrs returns this host's interface addresses.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Is4() && !out[j].Is4() })
	return out
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// gauges returns the metrics' gauges: the registrations of store, the
// calls of svc's call trackers, eng's transactions. They are read at
// every scrape: the registrations from the store's counters when it
// keeps them (location.Holder), not by reading every AOR as Count does.
func gauges(store location.Store, svc *pipeline.Services, eng *engine.Engine) metrics.Gauges {
	held := store.Count
	if h, ok := store.(location.Holder); ok {
		held = h.Held
	}
	return metrics.Gauges{
		Bindings:        func() float64 { _, n := held(); return float64(n) },
		AORs:            func() float64 { n, _ := held(); return float64(n) },
		Calls:           func() float64 { return float64(len(svc.Calls())) },
		Transactions:    func() float64 { return float64(eng.InFlight()) },
		Lingering:       func() float64 { return float64(eng.Lingering()) },
		Completed:       func() float64 { return float64(eng.Completed()) },
		QueueDelay:      func() float64 { return eng.QueueDelay().Seconds() },
		OverloadRefused: func() float64 { return float64(eng.OverloadRefused()) },
		UDPHeldBack:     func() float64 { return float64(eng.UDPHeldBack()) },
		Overloaded: func() float64 {
			if eng.Overloaded() {
				return 1
			}
			return 0
		},
		Capture:      eng.CaptureCounts,
		Destinations: func() []metrics.Destination { return destinations.Metrics(&svc.Shared) },
	}
}
