package app

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestDialogKey(t *testing.T) {
	dir := t.TempDir()
	first, err := dialogKey(dir)
	if err != nil || len(first) != 32 {
		t.Fatalf("%x %v", first, err)
	}
	st, err := os.Stat(filepath.Join(dir, dialogKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	again, err := dialogKey(dir)
	if err != nil || !bytes.Equal(first, again) {
		t.Errorf("the key changed across starts: %x then %x (%v)", first, again, err)
	}
	if err := os.WriteFile(filepath.Join(dir, dialogKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dialogKey(dir); err == nil {
		t.Error("a short key was accepted")
	}
}
