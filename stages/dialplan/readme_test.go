package dialplan

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestReadme checks README.md's sections, builds every example and checks
// the metrics it names.
func TestReadme(t *testing.T) { stagetest.CheckReadme(t, "README.md") }
