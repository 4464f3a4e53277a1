package app

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNodeID checks that a node keeps its ID across starts, and that a
// state folder copied from another host, or a damaged file, gets a new one.
func TestNodeID(t *testing.T) {
	dir := t.TempDir()
	first, replaced, err := nodeID(dir)
	if err != nil || len(first) != 32 || replaced != "" {
		t.Fatalf("first start: %q %q %v", first, replaced, err)
	}
	again, replaced, err := nodeID(dir)
	if err != nil || again != first || replaced != "" {
		t.Errorf("the ID changed across starts: %q then %q (%q, %v)", first, again, replaced, err)
	}
	path := filepath.Join(dir, nodeIDFile)
	tests := []struct {
		name, file, replaced string
	}{
		{"made on another host", first + "\nother-host\n", "other-host"},
		{"no host", first + "\n", ""},
		{"too short", "abc\n" + hostname(t) + "\n", hostname(t)},
	}
	for i, tc := range tests {
		if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		id, replaced, err := nodeID(dir)
		if err != nil || id == first || len(id) != 32 || replaced != tc.replaced {
			t.Errorf("test %d (%s): %q, replaced %q, %v; want a new ID, replaced %q", i, tc.name, id, replaced, err, tc.replaced)
		}
		if kept, _, _ := nodeID(dir); kept != id {
			t.Errorf("test %d (%s): the new ID %q was not kept: %q", i, tc.name, id, kept)
		}
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
