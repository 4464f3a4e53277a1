// Package examples holds ready config files; this test builds every one.
package examples

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

// TestExamplesBuild builds the pipeline of every examples/*.toml and of the
// default config.toml, as `switchboard validate` does.
func TestExamplesBuild(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../config.toml")
	if len(files) < 2 {
		t.Fatalf("no examples found: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			svc := &pipeline.Services{Location: location.NewMemory(), Log: slog.New(slog.DiscardHandler)}
			defer svc.Close()
			for _, l := range cfg.Server.Listen {
				parsed, err := config.ParseListen(l)
				if err != nil {
					t.Fatal(err)
				}
				ip, _ := netip.ParseAddr(parsed.Host)
				svc.Sockets = append(svc.Sockets, pipeline.Socket{Transport: parsed.Network, Addr: netip.AddrPortFrom(ip, uint16(parsed.Port))})
			}
			p, err := pipeline.Build(cfg, svc)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Cleanup(); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := os.Stat("../config.toml"); err != nil {
		t.Error("the default config.toml is missing")
	}
}
