package app

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenControl(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.ctl")
	// A socket whose listener is gone, as a killed proxy leaves it.
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	live := filepath.Join(dir, "live.ctl")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	plain := filepath.Join(dir, "plain.ctl")
	if err := os.WriteFile(plain, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, wantErr string
	}{
		{filepath.Join(dir, "new.ctl"), ""},
		{stale, ""},
		{live, "another switchboard answers on it"},
		{plain, "a file that is not a socket is in the way"},
		{filepath.Join(dir, strings.Repeat("x", 120)), "longer than 107 bytes"},
	}
	for i, tc := range tests {
		ln, err := listenControl(tc.path)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("test %d: error %v, want %q", i, err, tc.wantErr)
			}
			if err == nil {
				ln.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		fi, err := os.Stat(tc.path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("test %d: mode %v (%v), want 0600", i, fi.Mode(), err)
		}
		ln.Close()
		if _, err := os.Stat(tc.path); !os.IsNotExist(err) {
			t.Errorf("test %d: the socket file stays after close: %v", i, err)
		}
	}
	if data, err := os.ReadFile(plain); err != nil || string(data) != "mine" {
		t.Errorf("the plain file was touched: %q %v", data, err)
	}
}
