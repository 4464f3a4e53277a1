package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWritable(t *testing.T) {
	dir := t.TempDir()
	readOnly := filepath.Join(dir, "ro")
	if err := os.Mkdir(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "calls.log")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0 // root writes into a read-only folder
	tests := []struct {
		path, stateDir string
		want           string // "" for writable
	}{
		{existing, "", ""},
		{filepath.Join(dir, "new.log"), "", ""},
		{filepath.Join(dir, "missing", "new.log"), "", "no such file or directory"},
		{filepath.Join(dir, "state", "deeper", "s.db"), filepath.Join(dir, "state", "deeper"), ""},
		{filepath.Join(dir, "other", "s.db"), filepath.Join(dir, "state"), "no such file or directory"},
		{filepath.Join(existing, "x.log"), "", "not a directory"},
		{filepath.Join(readOnly, "x.log"), "", "permission denied"},
		{filepath.Join(readOnly, "state", "s.db"), filepath.Join(readOnly, "state"), "permission denied"},
	}
	for i, tc := range tests {
		err := Writable(tc.path, tc.stateDir)
		if root && tc.want == "permission denied" {
			continue
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("test %d (%s): %v", i, tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("test %d (%s): error %v, want one with %q", i, tc.path, err, tc.want)
		}
	}
}
