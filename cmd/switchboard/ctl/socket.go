package ctl

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-sip/switchboard/config"
)

// SocketName is the control socket's file name in the runtime folder.
const SocketName = "switchboard.ctl"

// SocketPath returns the control socket of the proxy run with cfg. The
// proxy listens there and ctl dials it, so both derive it the same way:
// server.control_socket when set (relative: in the state folder), else
// in $RUNTIME_DIRECTORY (set by systemd's RuntimeDirectory), else in the
// state folder (server.state_dir, by default the config file's). Only the
// config names a folder outside the state folder that an operator's shell
// finds too, so no proxy lands on a system proxy's socket by accident.
func SocketPath(cfg *config.File) string {
	if s := cfg.Server.ControlSocket; s != "" {
		return absolute(cfg.StatePath(s))
	}
	if dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); dir != "" {
		return filepath.Join(dir, SocketName)
	}
	return filepath.Join(absolute(cfg.StateDir()), SocketName)
}

// absolute makes path absolute against the working folder, when it can.
func absolute(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
