package parse

import (
	"os"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestReadmeExamples builds every example of README.md.
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
		if _, err := stagetest.Build(t, text); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
	}
}
