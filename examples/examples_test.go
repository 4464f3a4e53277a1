// Package examples holds ready config files; this test builds every one.
package examples

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
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
			if _, err := pipeline.Check(cfg, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat("../config.toml"); err != nil {
		t.Error("the default config.toml is missing")
	}
}
