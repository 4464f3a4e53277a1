package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// ConfigSockets returns the sockets a config's listen list names, for
// building a pipeline without binding them (`validate`, tests). An address
// left out means all interfaces.
func ConfigSockets(cfg *config.File) []Socket {
	var out []Socket
	for _, l := range cfg.Server.Listen {
		parsed, err := config.ParseListen(l)
		if err != nil {
			continue
		}
		ip, _ := netip.ParseAddr(parsed.Host)
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		out = append(out, Socket{Transport: strings.ToUpper(parsed.Network), Addr: netip.AddrPortFrom(ip.Unmap(), uint16(parsed.Port))})
	}
	return out
}

// Check builds the whole pipeline of cfg, as a start would, but opens no
// socket and uses a throwaway in-memory location store; then cleans it up.
// It checks that the location store's file and the log file could be
// written, too. It
// returns the stages' labels, or every mistake as *config.Errors.
func Check(cfg *config.File, localAddrs []netip.Addr) ([]string, error) {
	svc := &Services{Location: location.NewMemory(), Log: slog.New(slog.DiscardHandler), LocalAddrs: localAddrs, Sockets: ConfigSockets(cfg), Checking: true}
	defer svc.Close()
	errs := &config.Errors{File: cfg.Path, Positions: cfg.Positions}
	if path := location.BoltPath(cfg.Store, cfg.StateDir()); path != "" {
		if err := config.Writable(path, cfg.StateDir()); err != nil {
			errs.AddAt("store.path", fmt.Errorf("store: path: %w", err))
		}
	}
	if cfg.Log.Output == "file" && cfg.Log.File != "" {
		if err := config.Writable(cfg.StatePath(cfg.Log.File), cfg.StateDir()); err != nil {
			errs.AddAt("log.file", fmt.Errorf("log: file: %w", err))
		}
	}
	p, err := Build(cfg, svc)
	if err != nil {
		var built *config.Errors
		if errors.As(err, &built) {
			built.List = append(errs.List, built.List...)
		}
		return nil, err
	}
	stages := p.Stages()
	if errs.Len() > 0 {
		_ = p.Cleanup()
		return nil, errs
	}
	return stages, p.Cleanup()
}
