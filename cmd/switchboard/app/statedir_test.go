package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
)

// TestReloadKeepsStateDir: server.state_dir and server.control_socket
// change on restart only. A reload that changes one says so, and the new
// pipeline's stages still write to the folder the store and the key are
// in.
func TestReloadKeepsStateDir(t *testing.T) {
	tests := []struct {
		key, value string
		kept       func(r *reloader) bool
	}{
		{"state_dir", "elsewhere", func(r *reloader) bool { return r.eng.Pipeline().Config.StateDir() == filepath.Dir(r.path) }},
		{"control_socket", "other.ctl", func(r *reloader) bool { return r.eng.Pipeline().Config.Server.ControlSocket == "" }},
	}
	for i, tc := range tests {
		r, logs := testReloader(t, goodConfig)
		edited := strings.Replace(goodConfig, "[server]\n", "[server]\n"+tc.key+" = '"+tc.value+"'\n", 1)
		if err := os.WriteFile(r.path, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		r.reload("test")
		if r.Last().Result != "applied" || !strings.Contains(logs.String(), "needs_restart=server."+tc.key) {
			t.Errorf("test %d: %s change: %+v\n%s", i, tc.key, r.Last(), logs.String())
		}
		if !tc.kept(r) {
			t.Errorf("test %d: the reloaded pipeline does not keep the %s of the start", i, tc.key)
		}
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
