package app

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
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

// TestListenControlKeepsUmask: listening on the control socket leaves the
// process's umask alone, so that folders other goroutines make meanwhile
// (capture's pcap_dir) get their usual mode.
func TestListenControlKeepsUmask(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	done := make(chan os.FileMode)
	go func() {
		worst := os.FileMode(0o777)
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- worst
				return
			default:
			}
			sub := filepath.Join(dir, "made", strconv.Itoa(i))
			if err := os.MkdirAll(sub, 0o755); err == nil {
				if fi, err := os.Stat(sub); err == nil {
					worst &= fi.Mode().Perm()
				}
			}
		}
	}()
	for i := 0; i < 500; i++ {
		ln, err := listenControl(filepath.Join(dir, "c.ctl"))
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
	close(stop)
	if worst := <-done; worst&0o700 != 0o700 {
		t.Errorf("a folder made while the control socket opened got mode %v", worst)
	}
}
