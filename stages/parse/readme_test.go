package parse

import (
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestReadmeExamples checks README.md's sections and builds every example.
func TestReadmeExamples(t *testing.T) { stagetest.CheckReadme(t, "README.md") }
