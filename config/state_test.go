package config

import (
	"path/filepath"
	"testing"
)

// TestStatePath checks where the files the proxy writes go: beside the
// config without server.state_dir, in state_dir with it (a relative
// state_dir taken from the config's folder), absolute names unchanged.
func TestStatePath(t *testing.T) {
	cwd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, stateDir string
		name, want     string
		wantDir        string
	}{
		{"/etc/switchboard/config.toml", "", "switchboard.key", "/etc/switchboard/switchboard.key", "/etc/switchboard"},
		{"/etc/switchboard/config.toml", "", "logs/calls.log", "/etc/switchboard/logs/calls.log", "/etc/switchboard"},
		{"config.toml", "", "switchboard.db", "switchboard.db", "."},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "switchboard.key", "/var/lib/switchboard/switchboard.key", "/var/lib/switchboard"},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "/var/log/switchboard/calls.log", "/var/log/switchboard/calls.log", "/var/lib/switchboard"},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "", "", "/var/lib/switchboard"},
		{"/etc/switchboard/config.toml", "state", "cdr.csv", "/etc/switchboard/state/cdr.csv", "/etc/switchboard/state"},
		{"/etc/switchboard/config.toml", "../../var/lib/sb/", "cdr.csv", "/var/lib/sb/cdr.csv", "/var/lib/sb"},
		{"config.toml", "state", "cdr.csv", filepath.Join(cwd, "state/cdr.csv"), filepath.Join(cwd, "state")},
	}
	for i, tc := range tests {
		toml := "[[stage]]\nuse = 'forward'\n"
		if tc.stateDir != "" {
			toml = "[server]\nstate_dir = '" + tc.stateDir + "'\n" + toml
		}
		f, err := Parse(tc.path, []byte(toml))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if got := f.StateDir(); got != tc.wantDir {
			t.Errorf("test %d: StateDir() = %q, want %q", i, got, tc.wantDir)
		}
		if got := f.StatePath(tc.name); got != tc.want {
			t.Errorf("test %d: StatePath(%q) = %q, want %q", i, tc.name, got, tc.want)
		}
	}
}
