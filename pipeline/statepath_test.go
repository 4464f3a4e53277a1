package pipeline

import (
	"testing"

	"github.com/switchboard-sip/switchboard/config"
)

// pathStage is a test stage that records how its file names resolve.
type pathStage struct {
	Read  string `toml:"read"`
	Write string `toml:"write"`
}

// resolved holds what the last pathStage provisioned saw: the file it
// reads, the file it writes.
var resolved [2]string

func (s *pathStage) ServeRequest(*Context) (Verdict, error) { return Continue, nil }

func (s *pathStage) Provision(b *BuildContext) error {
	resolved = [2]string{b.Path(s.Read), b.StatePath(s.Write)}
	return nil
}

func init() {
	Register(StageInfo{Name: "test_paths", Description: "test", New: func() Stage { return new(pathStage) }})
}

// TestStatePath: a file a stage writes goes to server.state_dir when it is
// set and beside the config otherwise; a file it reads is always taken
// from the config's folder; absolute names stay.
func TestStatePath(t *testing.T) {
	tests := []struct {
		stateDir, read, write string
		want                  [2]string
	}{
		{"", "users.txt", "calls.log", [2]string{"/etc/sb/users.txt", "/etc/sb/calls.log"}},
		{"/var/lib/sb", "users.txt", "calls.log", [2]string{"/etc/sb/users.txt", "/var/lib/sb/calls.log"}},
		{"state", "users.txt", "log/calls.log", [2]string{"/etc/sb/users.txt", "/etc/sb/state/log/calls.log"}},
		{"/var/lib/sb", "/srv/users.txt", "/var/log/sb/calls.log", [2]string{"/srv/users.txt", "/var/log/sb/calls.log"}},
		{"/var/lib/sb", "", "", [2]string{"", ""}},
	}
	for i, tc := range tests {
		toml := "[[stage]]\nuse = 'test_paths'\nread = '" + tc.read + "'\nwrite = '" + tc.write + "'\n"
		if tc.stateDir != "" {
			toml = "[server]\nstate_dir = '" + tc.stateDir + "'\n" + toml
		}
		cfg, err := config.Parse("/etc/sb/config.toml", []byte(toml))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if _, err := Build(cfg, testServices()); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if resolved != tc.want {
			t.Errorf("test %d: read, write = %q, want %q", i, resolved, tc.want)
		}
	}
}
