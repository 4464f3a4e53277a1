package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
)

// TestReloadKeepsStateDir: server.state_dir changes on restart only. A
// reload that changes it says so, and the new pipeline's stages still
// write to the folder the store and the key are in.
func TestReloadKeepsStateDir(t *testing.T) {
	r, logs := testReloader(t, goodConfig)
	dir := filepath.Dir(r.path)
	edited := strings.Replace(goodConfig, "[server]\n", "[server]\nstate_dir = 'elsewhere'\n", 1)
	if err := os.WriteFile(r.path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload("test")
	if r.Last().Result != "applied" || !strings.Contains(logs.String(), "needs_restart=server.state_dir") {
		t.Errorf("state_dir change: %+v\n%s", r.Last(), logs.String())
	}
	if got := r.eng.Pipeline().Config.StateDir(); got != dir {
		t.Errorf("the reloaded pipeline writes to %q, want %q (the folder at start)", got, dir)
	}
}

// TestReloadKeepsControlSocket: server.control_socket changes on restart
// only, like state_dir.
func TestReloadKeepsControlSocket(t *testing.T) {
	r, logs := testReloader(t, goodConfig)
	edited := strings.Replace(goodConfig, "[server]\n", "[server]\ncontrol_socket = 'other.ctl'\n", 1)
	if err := os.WriteFile(r.path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload("test")
	if r.Last().Result != "applied" || !strings.Contains(logs.String(), "needs_restart=server.control_socket") {
		t.Errorf("control_socket change: %+v\n%s", r.Last(), logs.String())
	}
	if got := r.eng.Pipeline().Config.Server.ControlSocket; got != "" {
		t.Errorf("the reloaded config names the socket %q, want the one at start", got)
	}
}

// TestMakeStateDir: the proxy creates a state_dir that is missing, and
// reports one that cannot be a folder.
func TestMakeStateDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stateDir string
		fails    bool
	}{
		{"", false},
		{filepath.Join(base, "a/b"), false},
		{file, true},
		{filepath.Join(file, "sub"), true},
	}
	for i, tc := range tests {
		cfg := &config.File{Path: filepath.Join(base, "config.toml"), Server: config.Server{StateDir: tc.stateDir}}
		err := makeStateDir(cfg)
		if (err != nil) != tc.fails {
			t.Errorf("test %d: %q: error %v, want failure %v", i, tc.stateDir, err, tc.fails)
			continue
		}
		if err == nil && tc.stateDir != "" {
			if fi, err := os.Stat(tc.stateDir); err != nil || !fi.IsDir() || fi.Mode().Perm()&^0o750 != 0 {
				t.Errorf("test %d: %q: %v %v, want a folder of mode 0750 at most", i, tc.stateDir, fi, err)
			}
		}
	}
}
