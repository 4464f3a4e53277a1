package prefixes

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/dispatch"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
)

// TestReadme checks README.md's sections and builds its examples, with the
// table files of testdata.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md", stagetest.WithConfigPath("testdata/config.toml"))
}
