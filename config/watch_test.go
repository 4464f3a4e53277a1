package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatcher edits a real file the ways editors and people do, and checks
// that each content change is reported once and that a write of the same
// content is not.
func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("v0"), 0o644); err != nil {
		t.Fatal(err)
	}
	changes := make(chan string, 16)
	w, err := NewWatcher(50*time.Millisecond, func(p string) { changes <- p }, func(err error) { t.Log(err) })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Watch(path); err != nil {
		t.Fatal(err)
	}
	edits := []struct {
		name   string
		edit   func(content string) error
		change bool
	}{
		{"in place", func(c string) error { return os.WriteFile(path, []byte(c), 0o644) }, true},
		{"same content", func(string) error { return os.WriteFile(path, []byte("in place"), 0o644) }, false},
		{"rename on save", func(c string) error {
			tmp := filepath.Join(dir, ".config.toml.swp")
			if err := os.WriteFile(tmp, []byte(c), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}, true},
		{"rm and recreate", func(c string) error {
			if err := os.Remove(path); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
			return os.WriteFile(path, []byte(c), 0o644)
		}, true},
		{"in place after recreate", func(c string) error { return os.WriteFile(path, []byte(c), 0o644) }, true},
		{"another file in the dir", func(c string) error {
			return os.WriteFile(filepath.Join(dir, "other.toml"), []byte(c), 0o644)
		}, false},
		{"two quick writes", func(c string) error {
			if err := os.WriteFile(path, []byte(c+" half"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(path, []byte(c), 0o644)
		}, true},
	}
	for i, tc := range edits {
		if err := tc.edit(tc.name); err != nil {
			t.Fatalf("test %d (%s): %v", i, tc.name, err)
		}
		select {
		case p := <-changes:
			if !tc.change {
				t.Errorf("test %d (%s): change reported for %s", i, tc.name, p)
			}
			if p != path {
				t.Errorf("test %d (%s): change of %s, want %s", i, tc.name, p, path)
			}
		case <-time.After(2 * time.Second):
			if tc.change {
				t.Errorf("test %d (%s): no change reported", i, tc.name)
			}
		}
		// The debounce merges what one edit does; nothing else may follow.
		select {
		case p := <-changes:
			t.Errorf("test %d (%s): a second change reported for %s", i, tc.name, p)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
