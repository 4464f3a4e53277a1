package calllog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestReadme checks README.md's sections and builds every example, with
// its files in a temporary directory.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md", stagetest.WithConfigPath(filepath.Join(t.TempDir(), "config.toml")))
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
