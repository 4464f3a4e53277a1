// Package app is the switchboard command: flags, subcommands, logging,
// signals and reloads. A binary with extra stages imports them and calls
// Main, as cmd/switchboard and examples/customstage do.
//
//	switchboard -config config.toml [-listen udp://127.0.0.1:5060]...
//	switchboard validate -config config.toml
//	switchboard stages
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
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
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

// Main runs the command with its arguments (without the program name) and
// returns the exit code: 0, 1 for a config or start-up error, 2 for usage.
// The stages it knows are those registered by the binary's imports.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "validate":
			return validate(args[1:], stdout, stderr)
		case "stages":
			return listStages(stdout)
		case "store":
			return storeCommand(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "config.toml", "the config file")
	watch := fs.Bool("watch", true, "reload the config when the file changes (SIGHUP reloads either way)")
	var listens listFlag
	fs.Var(&listens, "listen", "a socket to listen on, replacing server.listen (repeatable): udp://127.0.0.1:5060, tcp://[::1]:5070, tls://0.0.0.0:5061, ws://0.0.0.0:8080/sip, wss://0.0.0.0:8443/sip")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: switchboard [-config FILE] [-listen URI]...\n       switchboard validate -config FILE\n       switchboard stages\n       switchboard store check FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	file, cfg, err := load(*cfgPath, listens)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	log := newLogger(stderr, cfg.Log)
	slog.SetDefault(log)
	return serve(cfg, file.Server.Listen, *watch, log)
}

// load reads the config file and returns it as written and with the
// -listen flags applied.
func load(path string, listens []string) (file, cfg *config.File, err error) {
	file, err = config.Load(path)
	if err != nil {
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
		for _, l := range listens {
			if _, err := config.ParseListen(l); err != nil {
				errs.Add(err)
			}
		}
		if errs.Len() > 0 {
			return nil, errs
		}
		cfg.Server.Listen = listens
	}
	return &cfg, nil
}

func serve(cfg *config.File, fileListen []string, watch bool, log *slog.Logger) int {
	location.SetRedisLogger(log)
	store, err := openStore(cfg, log)
	if err != nil {
		log.Error("starting", "error", fmt.Errorf("%s: store: %w", cfg.Path, err))
		return 1
	}
	if r, ok := store.(*location.Redis); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := r.Ping(ctx); err != nil {
			log.Warn("the location store is not reachable yet: requests that need it get 503 until it is", "error", err)
		}
		cancel()
	}
	key, err := dialogKey(filepath.Dir(cfg.Path))
	if err != nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Warn("no lasting key for signing Record-Routes: dialogs in progress will not survive a restart", "error", err)
	}
	dialogs, err := dialog.Open(cfg.Store, filepath.Dir(cfg.Path), key, time.Now())
	if err != nil {
		_ = store.Close()
		log.Error("starting", "error", fmt.Errorf("%s: dialog store: %w", cfg.Path, err))
		return 1
	}
	stopCopies := func() {}
	if b, ok := store.(*location.Bolt); ok {
		stopCopies = keepCopies(b, log)
		defer stopCopies()
	}
	svc := &pipeline.Services{Location: store, Dialogs: dialogs, Log: log, LocalAddrs: localAddrs(), DialogKey: key}
	// A start that fails after this point closes the services too: the
	// dialog store writes back the dialogs it read at start.
	closed := false
	defer func() {
		if !closed {
			_ = svc.Close()
		}
	}()
	gc := &collector{}
	gc.apply(cfg.Server.MemoryLimit, log)
	stopCerts := make(chan struct{})
	defer close(stopCerts)
	certStore, err := openCerts(cfg, log, stopCerts)
	if err != nil {
		log.Error("starting", "error", err)
		return 1
	}
	eng, err := engine.New(svc, log, engine.Options{Linger: time.Duration(cfg.Server.Linger), Certs: certStore})
	if err != nil {
		log.Error("starting", "error", err)
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
	eng.Descriptors = raiseNoFile(cfg.Server, log)
	if err := eng.Listen(listens); err != nil {
		log.Error("starting", "error", err)
		return 1
	}
	p, err := pipeline.Build(cfg, svc)
	if err != nil {
		for _, line := range lines(err) {
			log.Error("config", "error", line)
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
	log.Info("ready", "config", cfg.Path, "hash", short(cfg.Hash), "stages", strings.Join(p.Stages(), ", "))

	r := &reloader{path: cfg.Path, listen: cfg.Server.Listen, file: fileListen, store: cfg.Store, tls: cfg.TLS, http: cfg.HTTP, linger: cfg.Server.Linger, udpBuffer: cfg.Server.UDPReceiveBuffer, gc: gc, eng: eng, svc: svc, log: log, hash: cfg.Hash}
	if watch {
		w, err := config.NewWatcher(watchDebounce,
			func(path string) { r.reload("file changed: " + path) },
			func(err error) { log.Warn("watching the config", "error", err) })
		if err != nil {
			log.Error("watching the config", "error", err)
			return 1
		}
		defer w.Close()
		r.watcher = w
		if err := w.Watch(p.Files()...); err != nil {
			log.Error("watching the config", "error", err)
			return 1
		}
	}
	if cfg.HTTP.Listen != "" {
		a, err := startAdmin(cfg.HTTP, eng, svc, r, log)
		if err != nil {
			log.Error("starting", "error", fmt.Errorf("%s: http: listen: %w", cfg.Path, err))
			_ = eng.Shutdown(context.Background())
			return 1
		}
		defer a.stop()
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			// Reopen log files first, so that logrotate works even when
			// the reload that SIGHUP also asks for fails.
			reopen(svc, log)
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
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "config.toml", "the config file")
	var listens listFlag
	fs.Var(&listens, "listen", "a socket, replacing server.listen (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	_, cfg, err := load(*cfgPath, listens)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	stages, err := pipeline.Check(cfg, localAddrs())
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
	fmt.Fprintf(stdout, "%s: ok (%d stages: %s)\n", cfg.Path, len(stages), strings.Join(stages, ", "))
	return 0
}

// listStages prints every registered stage with its description and keys.
func listStages(stdout io.Writer) int {
	for _, info := range pipeline.Stages() {
		fmt.Fprintf(stdout, "%-14s %s\n", info.Name, info.Description)
		if keys := pipeline.StageKeys(info); len(keys) > 0 {
			fmt.Fprintf(stdout, "%-14s keys: %s\n", "", strings.Join(keys, ", "))
		}
	}
	return 0
}

func printErrors(w io.Writer, err error) {
	for _, line := range lines(err) {
		fmt.Fprintln(w, line)
	}
}

func lines(err error) []string {
	var ce *config.Errors
	if errors.As(err, &ce) {
		return ce.Lines()
	}
	return []string{err.Error()}
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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
		Bindings:     func() float64 { _, n := held(); return float64(n) },
		AORs:         func() float64 { n, _ := held(); return float64(n) },
		Calls:        func() float64 { return float64(len(svc.Calls())) },
		Transactions: func() float64 { return float64(eng.InFlight()) },
		Lingering:    func() float64 { return float64(eng.Lingering()) },
		Capture:      eng.CaptureCounts,
	}
}
