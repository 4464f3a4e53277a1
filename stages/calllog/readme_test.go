package calllog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestReadmeExamples builds every example of README.md, with its files in
// a temporary directory.
func TestReadmeExamples(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, examples, _ := strings.Cut(string(data), "## Examples")
	blocks := strings.Split(examples, "~~~ toml\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("README.md has no examples")
	}
	for i, block := range blocks {
		text, _, _ := strings.Cut(block, "~~~")
		dir := t.TempDir()
		text = strings.ReplaceAll(text, "/var/log/switchboard", dir)
		cfg, err := config.Parse(filepath.Join(dir, "config.toml"), []byte(text))
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		svc := newServices()
		p, err := pipeline.Build(cfg, svc)
		if err != nil {
			t.Errorf("example %d: %v", i, err)
			continue
		}
		_ = p.Cleanup()
		_ = svc.Close()
	}
}

// TestReadmeSyntax checks that the Syntax block names every key with its
// default.
func TestReadmeSyntax(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, syntax, _ := strings.Cut(string(data), "## Syntax")
	syntax, _, _ = strings.Cut(syntax, "## Examples")
	for _, key := range pipeline.StageKeys(pipeline.StageInfo{New: func() pipeline.Stage { return New() }}) {
		if !strings.Contains(syntax, "\n"+key+" ") {
			t.Errorf("Syntax does not name %q", key)
		}
	}
	for _, want := range []string{`format     = "seed"`, `time_zone  = "Local"`, `cdr_format = "csv"`, `max_call   = "12h"`, "max_calls  = 100000", "seed_only  = false"} {
		if !strings.Contains(syntax, want) {
			t.Errorf("Syntax lacks %q", want)
		}
	}
	if DefaultMaxCall.String() != "12h0m0s" || DefaultMaxCalls != 100000 || DefaultFormat != "seed" || DefaultCDRFormat != "csv" || DefaultTimeZone != "Local" {
		t.Error("the defaults differ from the README")
	}
}
