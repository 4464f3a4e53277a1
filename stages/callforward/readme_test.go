package callforward

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
	_ "github.com/switchboard-sip/switchboard/stages/record_route"
	_ "github.com/switchboard-sip/switchboard/stages/registrar"
)

// TestReadme checks README.md's sections and builds its examples.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md")
}
