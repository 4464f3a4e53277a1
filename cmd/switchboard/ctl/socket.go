package ctl

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-sip/switchboard/config"
)

// SocketName is the control socket's file name in the runtime folder.
const SocketName = "switchboard.ctl"

// systemdRuntime is the runtime folder of the shipped systemd unit
// (RuntimeDirectory=switchboard), where an operator's shell, which has no
// RUNTIME_DIRECTORY, finds the socket.
const systemdRuntime = "/run/switchboard"

// SocketPath returns the control socket of the proxy run with cfg. The
// proxy listens there and ctl dials it, so both derive it the same way:
// in $RUNTIME_DIRECTORY (set by systemd's RuntimeDirectory), else in
// /run/switchboard when that folder exists, else in the state folder
// (server.state_dir, by default the config file's).
func SocketPath(cfg *config.File) string {
	return filepath.Join(runtimeDir(cfg), SocketName)
}

func runtimeDir(cfg *config.File) string {
	if dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); dir != "" {
		return dir
	}
	if fi, err := os.Stat(systemdRuntime); err == nil && fi.IsDir() {
		return systemdRuntime
	}
	dir, err := filepath.Abs(cfg.StateDir())
	if err != nil {
		return cfg.StateDir()
	}
	return dir
}
