package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// copyEvery is how often the proxy keeps a copy of its bolt store, besides
// the one it keeps at start.
const copyEvery = time.Hour

// openStore opens the location store of cfg. A bolt file is checked first,
// in a child process (checkStore): a damaged one is an error that says how
// to recover, never a crash. Once the store is open, the proxy keeps a
// copy of it (location.Bolt.Backup) and logs what it holds.
func openStore(cfg *config.File, log *slog.Logger) (location.Store, error) {
	path := location.BoltPath(cfg.Store, cfg.StateDir())
	if path != "" {
		fi, err := os.Stat(path)
		switch {
		case err == nil && fi.Size() > 0:
			if _, err := checkStore(path); errors.Is(err, errNotChecked) {
				return nil, fmt.Errorf("location store %s: %w", path, err)
			} else if err != nil {
				return nil, fmt.Errorf("location store %s is damaged: %w: %s", path, err, location.Recovery(path))
			}
		case err == nil && !exists(location.Marker(path)):
			log.Warn("the location store's file is empty: starting a new store in it", "path", path)
		}
	}
	store, err := location.Open(cfg.Store, cfg.StateDir())
	if err != nil {
		return nil, err
	}
	b, ok := store.(*location.Bolt)
	if !ok {
		log.Info("location store", "backend", cfg.Store.Backend)
		return store, nil
	}
	kept, _, err := b.Backup(checkStore)
	if err != nil {
		log.Error("location store", "path", path, "error", err)
	}
	aors, bindings := b.Held()
	log.Info("location store", "backend", cfg.Store.Backend, "path", path, "aors", aors, "bindings", bindings, "copy", kept)
	return store, nil
}

// keepCopies keeps a copy of b every copyEvery until the function it
// returns is called.
func keepCopies(b *location.Bolt, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(copyEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if kept, _, err := b.Backup(checkStore); err != nil {
					log.Error("location store", "error", err)
				} else if kept != "" {
					log.Debug("location store", "copy", kept)
				}
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(done)
		<-stopped
	})
}

// exists reports whether path names a file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
