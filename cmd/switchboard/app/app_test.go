package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/switchboard-sip/switchboard/stages/all"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		config string
		args   []string
		code   int
		want   []string // in stdout (code 0) or stderr
	}{
		{"good", "[server]\ndomains=['a.org']\n[[stage]]\nuse='registrar'\n[[stage]]\nuse='forward'", nil, 0,
			[]string{"ok (2 stages: stage 1 (registrar), stage 2 (forward))"}},
		{"unknown stage and bad rule", "[[stage]]\nuse='registar'\n[[stage]]\nuse='rewrite'\nwhen='respons.code == 200'\nreason='OK THANKS'", nil, 1,
			[]string{`config.toml:2:1: stage 1 (registar): use: unknown stage type "registar", did you mean "registrar"?`, `config.toml:5:1: stage 2 (rewrite): when: unknown name respons (1:1) in ` + "`| respons.code == 200`" + `, did you mean "response"?`}},
		{"stage key", "[[stage]]\nuse='forward'\nfr_timout='3s'", nil, 1,
			[]string{`config.toml:3:1: stage 1 (forward): fr_timout: unknown key, did you mean "fr_timeout"? (known: fr_timeout, invite_timeout, failover_timeout)`}},
		{"terminal not last", "[[stage]]\nuse='forward'\n[[stage]]\nuse='location'", nil, 1,
			[]string{`stage 1 (forward): is terminal`}},
		{"rule not bool", "[[stage]]\nuse='forward'\nwhen='request.method'", nil, 1,
			[]string{`stage 1 (forward): when: expected bool`}},
		{"no stages", "[server]\ndomains=['a.org']", nil, 1, []string{"no [[stage]]"}},
		{"bad listen flag", "[[stage]]\nuse='forward'", []string{"-listen", "sctp://127.0.0.1:1"}, 1, []string{`-listen: "sctp://127.0.0.1:1"`}},
		{"listen flag", "[[stage]]\nuse='forward'", []string{"-listen", "udp://127.0.0.1:5999", "-listen", "tcp://[::1]:5999"}, 0, []string{"ok"}},
		{"ws listen flag", "[[stage]]\nuse='forward'", []string{"-listen", "ws://127.0.0.1:8080/sip"}, 0, []string{"ok"}},
		{"listen flag twice", "[[stage]]\nuse='forward'", []string{"-listen", "udp://127.0.0.1:5999", "-listen", "udp://127.0.0.1:5999"}, 1,
			[]string{`-listen: "udp://127.0.0.1:5999" listens on UDP 127.0.0.1:5999, as listen[0] "udp://127.0.0.1:5999" does already`}},
		{"tcp and ws on one port", "[server]\nlisten = ['tcp://127.0.0.1:5999', 'udp://127.0.0.1:5999',\n  'ws://127.0.0.1:5999/sip']\n[[stage]]\nuse='forward'", nil, 1,
			[]string{`config.toml:2:1: server: listen[2]: "ws://127.0.0.1:5999/sip" listens on TCP 127.0.0.1:5999, as listen[0] "tcp://127.0.0.1:5999" does already`}},
		{"server and stages in one pass", "[server]\naor = 'x'\n\n[[stage]]\nuse='forwrd'\n[[stage]]\nuse='rewrite'\nwhen='request.methd == \"BYE\"'", nil, 1,
			[]string{`config.toml:2:1: server: aor: "x" is neither`, `config.toml:5:1: stage 1 (forwrd): use: unknown stage type "forwrd", did you mean "forward"?`, `config.toml:8:1: stage 2 (rewrite): when: `, `did you mean "method"?`}},
		{"store file that cannot be created", "[store]\npath = '/nonexistent/dir/s.db'\n[[stage]]\nuse='forward'", nil, 1,
			[]string{`config.toml:2:1: store: path: open /nonexistent/dir/s.db: stat /nonexistent/dir: no such file or directory`}},
		{"state_dir to be created", "[server]\nstate_dir = 'state/deeper'\n[[stage]]\nuse='calllog'\npath='calls.log'\n[[stage]]\nuse='forward'", nil, 0,
			[]string{"ok (2 stages"}},
		{"call log folder that cannot be created", "[[stage]]\nuse='calllog'\npath='/nonexistent/dir/calls.log'\n[[stage]]\nuse='forward'", nil, 1,
			[]string{`config.toml:3:1: stage 1 (calllog): path: open /nonexistent/dir/calls.log: stat /nonexistent/dir: no such file or directory`}},
		{"log file in a state_dir to be created", "[server]\nstate_dir = 'state/deeper'\n[log]\noutput = 'file'\nfile = 'sb.log'\n[[stage]]\nuse='forward'", nil, 0,
			[]string{"ok (1 stages"}},
		{"log file folder that cannot be created", "[server]\nstate_dir = 'state'\n[log]\noutput = 'file'\nfile = 'logs/sb.log'\n[[stage]]\nuse='forward'", nil, 1,
			[]string{"config.toml:5:1: log: file: open ", "/state/logs/sb.log: stat ", "/state/logs: no such file or directory"}},
		{"rule naming a trunk", "[[stage]]\nuse='trunk'\nwhen='source.set != \"provider\"'\nuri='sip:sip.provider.example'\nname='provider'\n[[stage]]\nuse='forward'", nil, 0,
			[]string{"ok (2 stages"}},
		{"rule naming no trunk", "[[stage]]\nuse='trunk'\nwhen='source.set != \"provider\"'\nuri='sip:sip.provider.example'\nname='provder'\n[[stage]]\nuse='forward'", nil, 1,
			[]string{`config.toml:3:1: stage 1 (trunk): when: source.set: unknown set "provider", did you mean "provder"? (sets: "provder")`}},
		{"ws listen flag with a query", "[[stage]]\nuse='forward'", []string{"-listen", "ws://127.0.0.1:8080/sip?x"}, 1, []string{`-listen: "ws://127.0.0.1:8080/sip?x"`}},
	}
	for i, tc := range tests {
		path := writeConfig(t, tc.config)
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"validate", "-config", path}, tc.args...), &stdout, &stderr)
		if code != tc.code {
			t.Errorf("test %d (%s): exit %d, want %d; stderr: %s", i, tc.name, code, tc.code, stderr.String())
			continue
		}
		out := stdout.String() + stderr.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("test %d (%s): output %q does not contain %q", i, tc.name, out, w)
			}
		}
	}
}

// TestValidateCreatesNothing checks that validate says whether the call
// log's files could be written, and creates none of them.
func TestValidateCreatesNothing(t *testing.T) {
	tests := []struct {
		name string
		path string // the event log's path, relative to the config's directory
		code int
		want string
	}{
		{name: "new file", path: "calls.log"},
		{name: "no such directory", path: "missing/calls.log", code: 1, want: "stage 1 (calllog): path: open"},
		{name: "a directory", path: ".", code: 1, want: "stage 1 (calllog): path:"},
	}
	for i, tc := range tests {
		path := writeConfig(t, "[[stage]]\nuse='calllog'\npath='"+tc.path+"'\ncdr_path='cdr.csv'\n[[stage]]\nuse='forward'")
		dir := filepath.Dir(path)
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"validate", "-config", path}, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("test %d (%s): exit %d, stderr %q; want %d and %q", i, tc.name, code, stderr.String(), tc.code, tc.want)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "config.toml" {
				t.Errorf("test %d (%s): validate created %s", i, tc.name, e.Name())
			}
		}
	}
}

func TestValidateMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"validate", "-config", "/nonexistent/config.toml"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "/nonexistent/config.toml: open") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestStages(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"stages"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range []string{"parse", "registrar", "location", "record_route", "rewrite", "forward"} {
		if !strings.Contains(stdout.String(), name+" ") {
			t.Errorf("stages does not list %s:\n%s", name, stdout.String())
		}
	}
	if !strings.Contains(stdout.String(), "keys: fr_timeout, invite_timeout") {
		t.Errorf("stages does not list forward's keys:\n%s", stdout.String())
	}
}
