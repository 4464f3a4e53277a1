package app

import (
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
	"github.com/switchboard-sip/switchboard/cmd/switchboard/logs"
	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
)

// reloader rebuilds the pipeline from the config file and swaps it in.
// Reloads are serialized; one that fails keeps the running pipeline.
type reloader struct {
	mu     sync.Mutex
	path   string
	listen []string // the listen list in force, from the flags or the file
	file   []string // the listen list the file had at start
	store  config.Store
	tls    config.TLS
	http   config.HTTP
	linger config.Duration
	// udpBuffer is server.udp_receive_buffer at start.
	udpBuffer int
	// stateDir is server.state_dir at start: the store and the key stay
	// where they are, and the stages write there too, until a restart.
	stateDir string
	// controlSocket is server.control_socket at start.
	controlSocket string
	// gc applies server.memory_limit and gc_headroom, which change on
	// reload.
	gc   *collector
	eng  *engine.Engine
	svc  *pipeline.Services
	log  *slog.Logger
	hash string
	// watcher, if any, learns of the files each new pipeline loads.
	watcher *config.Watcher

	// logs follows [log]; nil in tests that log to a plain slog.Logger.
	logs *logs.Logger

	// last is the outcome of the last reload, for metrics and the admin view.
	last Outcome
	// history holds the last reloads, newest last; text is the config in
	// force as read, for the console's diff.
	history []Reload
	text    []byte
}

// Reload is one reload of the history: its outcome, what caused it, and
// the console session that saved the config, if one did.
type Reload struct {
	Outcome
	Cause   string
	Session string
}

// maxHistory bounds the reload history.
const maxHistory = 50

// Outcome is what one reload did.
type Outcome = ctl.Outcome

// Last returns the outcome of the last reload.
func (r *reloader) Last() Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// reload loads, builds and swaps in the config, logs the outcome
// (applied, unchanged or failed) and returns it.
func (r *reloader) reload(cause string) Outcome { return r.reloadBy(cause, "") }

// reloadBy is reload for a console session, which the history names.
func (r *reloader) reloadBy(cause, session string) Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		r.history = append(r.history, Reload{Outcome: r.last, Cause: cause, Session: session})
		if len(r.history) > maxHistory {
			r.history = r.history[1:]
		}
	}()
	cfg, err := config.Load(r.path)
	if err != nil {
		hash := ""
		if cfg != nil {
			// The stages' mistakes too, as validate lists them.
			_, err = checkAll(cfg, err)
			hash = cfg.Hash
		}
		r.failed(cause, hash, err)
		return r.last
	}
	if cfg.Hash == r.hash {
		r.last = Outcome{Result: "unchanged", Hash: cfg.Hash, At: time.Now()}
		r.svc.Metrics.Reload(r.last.Result, r.last.Hash, r.last.At)
		r.log.Info("reload", "outcome", "unchanged", "cause", cause, "hash", short(cfg.Hash))
		return r.last
	}
	var restart []string
	needs := func(key, detail string) {
		restart = append(restart, key)
		r.log.Warn("reload", "needs_restart", key, "detail", detail)
	}
	if !slices.Equal(cfg.Server.Listen, r.file) {
		needs("server.listen", "listen addresses change on restart; the rest applies now")
		cfg.Server.Listen = r.listen
	}
	if !cfg.HTTP.Equal(r.http) {
		needs("http", "the http listener changes on restart; the rest applies now")
	}
	if r.udpBuffer != 0 && cfg.Server.UDPReceiveBuffer != r.udpBuffer {
		needs("server.udp_receive_buffer", "socket buffers are set when the sockets open; the rest applies now")
	}
	if cfg.Server.Linger != r.linger {
		needs("server.linger", "the transaction linger changes on restart; the rest applies now")
	}
	if !reflect.DeepEqual(cfg.TLS, r.tls) {
		needs("tls", "the [tls] keys change on restart (the certificate files reload live); the rest applies now")
	}
	if cfg.Server.StateDir != r.stateDir {
		needs("server.state_dir", "the state folder changes on restart; the rest applies now")
		cfg.Server.StateDir = r.stateDir
	}
	if cfg.Server.ControlSocket != r.controlSocket {
		r.log.Warn("reload", "needs_restart", "server.control_socket", "detail", "the control socket changes on restart; the rest applies now")
		cfg.Server.ControlSocket = r.controlSocket
	}
	if cfg.Store != r.store {
		needs("store", "the location store changes on restart; the rest applies now")
	}
	p, err := pipeline.Build(cfg, r.svc)
	if err != nil {
		r.failed(cause, cfg.Hash, err)
		return r.last
	}
	if r.logs != nil {
		if err := r.logs.Apply(cfg.Log, cfg.StateDir()); err != nil {
			_ = p.Cleanup()
			r.failed(cause, cfg.Hash, fmt.Errorf("%s: %w", cfg.Path, err))
			return r.last
		}
	}
	r.eng.Use(p)
	if r.gc != nil {
		r.gc.apply(cfg.Server.MemoryLimit, cfg.Server.GCHeadroom, r.log)
	}
	r.hash = cfg.Hash
	if r.watcher != nil {
		if err := r.watcher.Watch(p.Files()...); err != nil {
			r.log.Warn("watching the config", "error", err)
		}
	}
	r.last = Outcome{Result: "applied", Hash: cfg.Hash, At: time.Now(), NeedsRestart: restart}
	r.text = readRunning(r.path, cfg.Hash)
	r.svc.Metrics.Reload(r.last.Result, r.last.Hash, r.last.At)
	r.log.Info("reload", "outcome", "applied", "cause", cause, "hash", short(cfg.Hash), "stages", len(p.Stages()))
	return r.last
}

// failed logs every mistake of a config that did not build, one line each,
// then the outcome; the running pipeline stays.
func (r *reloader) failed(cause, hash string, err error) {
	ls := lines(err)
	for _, line := range ls {
		r.log.Error("reload error", "error", line)
	}
	r.last = Outcome{Result: "failed", Hash: hash, Errors: ls, At: time.Now()}
	r.svc.Metrics.Reload(r.last.Result, r.last.Hash, r.last.At)
	r.log.Error("reload", "outcome", "failed", "cause", cause, "hash", short(hash), "errors", len(ls), "running", short(r.hash))
}

// readRunning returns the config file's bytes if they are still those
// whose hash is hash, the config in force.
func readRunning(path, hash string) []byte {
	data, err := os.ReadFile(path)
	if err != nil || fileHash(data) != hash {
		return nil
	}
	return data
}

// History returns the last reloads, oldest first.
func (r *reloader) History() []Reload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.history)
}

// running returns the config in force as read, and its hash.
func (r *reloader) running() ([]byte, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.text, r.hash
}
