package app

import (
	"os"

	"github.com/switchboard-sip/switchboard/config"
)

// makeStateDir creates server.state_dir (mode 0750) when the config names
// one that does not exist yet. Without it the proxy writes beside the
// config, whose folder it never creates.
func makeStateDir(cfg *config.File) error {
	if cfg.Server.StateDir == "" {
		return nil
	}
	return os.MkdirAll(cfg.Server.StateDir, 0o750)
}
