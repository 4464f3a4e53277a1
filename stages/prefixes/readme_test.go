package prefixes

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestReadme checks README.md's sections and builds its examples, with the
// table files of testdata.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md", stagetest.WithConfigPath("testdata/config.toml"))
}
