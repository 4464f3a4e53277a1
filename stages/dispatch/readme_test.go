package dispatch

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
)

// TestReadme checks README.md's sections and builds its examples.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md")
}
