package main

import (
	"log/slog"
	"slices"
	"sync"

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
	eng    *engine.Engine
	svc    *pipeline.Services
	log    *slog.Logger
	hash   string
}

// reload loads, builds and swaps in the config, and logs the outcome:
// applied, unchanged or failed.
func (r *reloader) reload(cause string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := config.Load(r.path)
	if err != nil {
		r.failed(cause, err)
		return
	}
	if cfg.Hash == r.hash {
		r.log.Info("reload", "outcome", "unchanged", "cause", cause, "hash", short(cfg.Hash))
		return
	}
	if !slices.Equal(cfg.Server.Listen, r.file) {
		r.log.Warn("reload", "needs_restart", "server.listen", "detail", "listen addresses change on restart; the rest applies now")
		cfg.Server.Listen = r.listen
	}
	p, err := pipeline.Build(cfg, r.svc)
	if err != nil {
		r.failed(cause, err)
		return
	}
	r.eng.Use(p)
	r.hash = cfg.Hash
	r.log.Info("reload", "outcome", "applied", "cause", cause, "hash", short(cfg.Hash), "stages", len(p.Stages()))
}

func (r *reloader) failed(cause string, err error) {
	ls := lines(err)
	for _, line := range ls {
		r.log.Error("reload", "outcome", "failed", "cause", cause, "error", line)
	}
}
