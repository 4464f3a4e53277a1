package console

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestAssetsJS runs the pages' own tests (testdata/js/*.test.mjs: the TOML
// highlighter, the editor's diff, the ladder's labels) with node's test
// runner. Node is missing only off CI: make test-deps installs it.
func TestAssetsJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the console's JavaScript tests need node: make test-deps installs it")
		}
		t.Skip("node is not installed: make test-deps installs it")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "js", "*.test.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no JavaScript tests in testdata/js (%v)", err)
	}
	out, err := exec.Command(node, append([]string{"--test"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
