package location

import (
	"fmt"
	"path/filepath"

	"github.com/switchboard-sip/switchboard/config"
)

// Open opens the location store that cfg names (after its defaults): a
// Memory, a Bolt (see BoltPath), or a Redis. A Redis that does not answer
// yet is not an error (see NewRedis). A Bolt whose file is missing or
// empty while its marker says a store was kept there is an error; one
// that opens gets its marker. Open does not check a bolt file: CheckBolt
// does, first.
func Open(cfg config.Store, stateDir string) (Store, error) {
	cfg.Defaults()
	switch cfg.Backend {
	case "memory":
		return NewMemory(), nil
	case "bolt":
		path := BoltPath(cfg, stateDir)
		if err := vanished(path); err != nil {
			return nil, err
		}
		s, err := NewBolt(path)
		if err != nil {
			return nil, err
		}
		if err := mark(path); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case "redis":
		s, err := NewRedis(cfg.URL, cfg.Prefix)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		return nil, fmt.Errorf("location store: backend %q is not one of memory, bolt, redis", cfg.Backend)
	}
}

// BoltPath returns the bolt file that cfg names (after its defaults), a
// relative path taken from stateDir (config.File.StateDir); "" for another
// backend.
func BoltPath(cfg config.Store, stateDir string) string {
	cfg.Defaults()
	if cfg.Backend != "bolt" {
		return ""
	}
	if filepath.IsAbs(cfg.Path) {
		return cfg.Path
	}
	return filepath.Join(stateDir, cfg.Path)
}
