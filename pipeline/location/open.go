package location

import (
	"fmt"
	"path/filepath"

	"github.com/switchboard-sip/switchboard/config"
)

// Open opens the location store that cfg names (after its defaults): a
// Memory, a Bolt whose relative path is taken from configDir, or a Redis.
// A Redis that does not answer yet is not an error (see NewRedis).
func Open(cfg config.Store, configDir string) (Store, error) {
	cfg.Defaults()
	switch cfg.Backend {
	case "memory":
		return NewMemory(), nil
	case "bolt":
		path := cfg.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(configDir, path)
		}
		s, err := NewBolt(path)
		if err != nil {
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
