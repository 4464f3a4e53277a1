package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/console"
)

func TestWriteAtomicThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.toml")
	if err := os.WriteFile(target, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.toml")
	if err := os.Symlink("real.toml", link); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v", err)
	}
	data, _ := os.ReadFile(target)
	fi, _ := os.Stat(target)
	if string(data) != "new" || fi.Mode().Perm() != 0o640 {
		t.Errorf("target: %q mode %v", data, fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".real.toml.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestConfigError(t *testing.T) {
	tests := []struct {
		line string
		want console.ConfigError
	}{
		{"c.toml:4:7: toml: expected character ]", console.ConfigError{Line: 4, Column: 7, Message: "toml: expected character ]"}},
		{"c.toml: stage 2: something", console.ConfigError{Message: "stage 2: something"}},
		{"other: x", console.ConfigError{Message: "other: x"}},
	}
	for i, tc := range tests {
		if got := configError("c.toml", tc.line); got != tc.want {
			t.Errorf("test %d: %+v, want %+v", i, got, tc.want)
		}
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff("a\nb\nc", "a\nB\nc")
	if !strings.Contains(got, "-b\n+B\n") || !strings.Contains(got, " a\n") {
		t.Errorf("diff:\n%s", got)
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	_ = os.WriteFile(path, nil, 0o644)
	if why := readOnly(path); why != "" {
		t.Errorf("a writable folder: %s", why)
	}
	if os.Getuid() == 0 {
		return // root writes anywhere but on a read-only mount
	}
	_ = os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if why := readOnly(path); !strings.Contains(why, "ReadWritePaths") {
		t.Errorf("a read-only folder: %q", why)
	}
}
