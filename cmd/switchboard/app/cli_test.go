package app

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// TestMainArguments checks that every way of calling the command either
// does what it says or is a usage error, and that none of them starts the
// proxy: the config they name does not exist, so a start would exit 1.
func TestMainArguments(t *testing.T) {
	good := writeConfig(t, "[[stage]]\nuse='forward'")
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-h"}, 0, "usage: switchboard [run]", ""},
		{[]string{"run", "-h"}, 0, "-listen value", ""},
		{[]string{"run", "-h"}, 0, "  -version\n    \tprint the version and exit", ""},
		{[]string{"validate", "-h"}, 0, "the config file (or give it as the argument)", ""},
		{[]string{"help"}, 0, "switchboard validate [-config FILE | FILE]", ""},
		{[]string{"version"}, 0, "switchboard (devel) (revision unknown) " + runtime.Version(), ""},
		{[]string{"-version"}, 0, "switchboard (devel)", ""},
		{[]string{"run", "-version"}, 0, "switchboard (devel)", ""},
		{[]string{"stages"}, 0, "forward", ""},
		{[]string{"validate", good}, 0, good + ": ok (1 stages", ""},
		{[]string{"validate", good, "-listen", "udp://127.0.0.1:5999"}, 0, good + ": ok", ""},
		{[]string{"validate", "-config", good}, 0, good + ": ok", ""},
		{[]string{"validate", "-config", good, good}, 2, "", "the config is both -config " + good},
		{[]string{"validate", good, good}, 2, "", "unexpected argument"},
		{[]string{"validate", "/nonexistent/x.toml"}, 1, "", "/nonexistent/x.toml: open /nonexistent/x.toml"},
		{[]string{"version", "now"}, 2, "", `switchboard version: unexpected argument "now"`},
		{[]string{"stages", "all"}, 2, "", `switchboard stages: unexpected argument "all"`},
		{[]string{"ctl", "-h"}, 0, "usage: switchboard ctl", ""},
		{[]string{"ctl", "stats", "now"}, 2, "", "usage: switchboard ctl stats"},
		{[]string{"strat"}, 2, "", `switchboard: unknown subcommand "strat"`},
		{[]string{"-config", "/nonexistent/x.toml", "extra"}, 2, "", `switchboard run: unexpected argument "extra"`},
		{[]string{"run", "/nonexistent/x.toml"}, 2, "", `switchboard run: unexpected argument "/nonexistent/x.toml"`},
		{[]string{"-confg", "x"}, 2, "", "flag provided but not defined: -confg"},
		{[]string{"run", "-config", "/nonexistent/x.toml"}, 1, "", "/nonexistent/x.toml: open"},
		{[]string{"store"}, 2, "", "the only store command is check FILE"},
	}
	for i, tc := range tests {
		var stdout, stderr bytes.Buffer
		code := Main(tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("test %d %q: exit %d, want %d; stderr: %s", i, tc.args, code, tc.code, stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("test %d %q: stdout %q does not contain %q", i, tc.args, stdout.String(), tc.stdout)
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("test %d %q: stderr %q does not contain %q", i, tc.args, stderr.String(), tc.stderr)
		}
		if code == 2 && !strings.Contains(stderr.String(), "usage: switchboard") {
			t.Errorf("test %d %q: a usage error without the usage: %q", i, tc.args, stderr.String())
		}
		if tc.code == 0 && stderr.Len() > 0 {
			t.Errorf("test %d %q: stderr %q, want nothing", i, tc.args, stderr.String())
		}
	}
}

func TestVersionString(t *testing.T) {
	tests := []struct {
		v    Version
		want string
	}{
		{Version{Module: "v1.2.0", Revision: "3735ce9a1b2c3d4e5f", Go: "go1.26.8"}, "v1.2.0 (revision 3735ce9a1b2c) go1.26.8"},
		{Version{Module: "(devel)", Revision: "3735ce9", Modified: true, Go: "go1.26.8"}, "(devel) (revision 3735ce9, modified) go1.26.8"},
	}
	for i, tc := range tests {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("test %d: %q, want %q", i, got, tc.want)
		}
	}
}
