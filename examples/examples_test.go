// Package examples holds ready config files; this test builds every one.
package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

// TestExamplesBuild builds the pipeline of every examples/*.toml and of the
// default config.toml, as `switchboard validate` does. Each is built from a
// copy in a temporary directory, beside copies of the files it may load
// (users files), so that the files stages open (call logs) are made there
// rather than in the source tree.
func TestExamplesBuild(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../config.toml")
	if len(files) < 2 {
		t.Fatalf("no examples found: %v", files)
	}
	beside, _ := filepath.Glob("*.txt")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range append([]string{f}, beside...) {
				copyFile(t, name, filepath.Join(dir, filepath.Base(name)))
			}
			cfg, err := config.Load(filepath.Join(dir, filepath.Base(f)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.Check(cfg, nil); err != nil {
				t.Fatal(strings.ReplaceAll(err.Error(), dir+"/", ""))
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
