package ctl

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
)

// fakeProxy answers the admin requests on a unix socket with canned
// bodies, keyed by "METHOD path?query".
func fakeProxy(t *testing.T, answers map[string]string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), SocketName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, ok := answers[req.Method+" "+req.URL.RequestURI()]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no such request: `+req.Method+" "+req.URL.RequestURI()+`"}`)
			return
		}
		code := http.StatusOK
		if strings.Contains(body, `"result":"failed"`) {
			code = http.StatusUnprocessableEntity
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestCommands(t *testing.T) {
	sock := fakeProxy(t, map[string]string{
		"GET /admin/registrations":            `[{"aor":"alice","bindings":[{"contact":"sip:alice@192.0.2.1:5060","expires_in":3599,"transport":"UDP","received":"192.0.2.1:5060","user_agent":"Linphone/5.2.5 (belle-sip)"}]}]`,
		"GET /admin/registrations?aor=nobody": `[]`,
		"DELETE /admin/registrations?aor=alice&contact=sip%3Aalice%40192.0.2.1%3A5060": `{"aor":"alice","removed":1}`,
		"GET /admin/calls":                      `[]`,
		"GET /admin/outbound":                   `[{"registrar":"sip:sip.example.net","aor":"sip:402@sip.example.net","contact":"sip:402@192.0.2.1","state":"failed","last_error":"403 Forbidden","failures":2}]`,
		"GET /admin/stats":                      `{"messages":[{"direction":"in","method":"INVITE","code":0,"count":3},{"direction":"out","method":"INVITE","code":486,"count":2}],"stages":[{"stage":"1:parse","requests":3,"responses":5,"verdicts":{"continue":3},"rule_matches":0,"rule_failures":0}]}`,
		"POST /admin/reload":                    `{"result":"failed","hash":"91c0d2e4aa10ffff","errors":["c.toml: stage 1 (registar): use: unknown stage type"],"error":"reload failed: the config in force stays"}`,
		"POST /admin/trace?state=on&user=alice": `{"trace":["alice"]}`,
		"POST /admin/log-level?level=debug":     `{"log_level":"debug"}`,
		"GET /admin/config":                     `{"path":"/etc/switchboard/config.toml","hash":"aaaa","file_hash":"bbbb","stages":["parse","forward"],"overrides":{"log_level":"debug","trace":["alice"]}}`,
	})
	tests := []struct {
		args        []string
		code        int
		stdout      []string
		stderr      []string
		notInStdout string
	}{
		{[]string{"registrations"}, 0, []string{"AOR", "USER-AGENT", "alice  sip:alice@192.0.2.1:5060  3599s    UDP", "Linphone/5.2.5 (belle-sip)"}, nil, ""},
		{[]string{"registrations", "-json"}, 0, []string{`[{"aor":"alice"`}, nil, "AOR"},
		{[]string{"registrations", "nobody", "-json"}, 0, []string{`[]`}, nil, ""},
		{[]string{"registrations", "nobody"}, 0, []string{"no registrations"}, nil, ""},
		{[]string{"unregister", "alice", "sip:alice@192.0.2.1:5060"}, 0, []string{"alice: 1 binding(s) removed"}, nil, ""},
		{[]string{"calls"}, 0, []string{"no calls in progress"}, nil, ""},
		{[]string{"outbound"}, 0, []string{"AOR", "sip:402@sip.example.net  sip:sip.example.net  failed  -           403 Forbidden"}, nil, ""},
		{[]string{"stats"}, 0, []string{"in         INVITE  -     3", "out        INVITE  486   2", "1:parse  3         5          0", "continue=3"}, nil, ""},
		{[]string{"reload"}, 1, nil, []string{"c.toml: stage 1 (registar): use: unknown stage type", "reload failed: the config in force stays"}, ""},
		{[]string{"reload", "-json"}, 1, []string{`"result":"failed"`}, nil, ""},
		{[]string{"trace", "alice", "on"}, 0, []string{"traced users:        alice"}, nil, ""},
		{[]string{"log-level", "debug"}, 0, []string{"log level override:  debug"}, nil, ""},
		{[]string{"config"}, 0, []string{"/etc/switchboard/config.toml", "on disk:             bbbb (edited, not in force)", "log level override:  debug"}, nil, ""},
		{[]string{"trace", "alice"}, 2, nil, []string{"usage: switchboard ctl trace USER on|off"}, ""},
		{[]string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}, ""},
		{[]string{}, 2, nil, []string{"usage: switchboard ctl"}, ""},
		{[]string{"-h"}, 0, []string{"usage: switchboard ctl", "log-level LEVEL"}, nil, ""},
		{[]string{"calls", "-nope"}, 2, nil, []string{"flag provided but not defined: -nope", "usage: switchboard ctl"}, ""},
	}
	for i, tc := range tests {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"-socket", sock}, tc.args...), &stdout, &stderr)
		if code != tc.code {
			t.Errorf("test %d: %v: exit %d, want %d\nstdout: %s\nstderr: %s", i, tc.args, code, tc.code, stdout.String(), stderr.String())
		}
		for _, w := range tc.stdout {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("test %d: %v: stdout lacks %q:\n%s", i, tc.args, w, stdout.String())
			}
		}
		for _, w := range tc.stderr {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("test %d: %v: stderr lacks %q:\n%s", i, tc.args, w, stderr.String())
			}
		}
		if tc.notInStdout != "" && strings.Contains(stdout.String(), tc.notInStdout) {
			t.Errorf("test %d: %v: -json output has the table:\n%s", i, tc.args, stdout.String())
		}
	}
}

// TestProxyDown checks that ctl names the socket it tried and exits 1.
func TestProxyDown(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("[[stage]]\nuse = 'forward'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-config", cfg, "calls"}, &stdout, &stderr)
	want := "no proxy answers on " + SocketPath(&config.File{Path: cfg})
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q: want 1 and %q", code, stderr.String(), want)
	}
}

// TestSocketPath: the packaged config (control_socket in /run) and an
// operator's shell agree, with or without RUNTIME_DIRECTORY; a config
// without the key never lands on /run/switchboard, whatever exists.
// TestProxyDownBrokenConfig: ctl looks for the socket where a config with
// mistakes names it, and says which socket it tried when the config does
// not parse at all.
func TestProxyDownBrokenConfig(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	dir := t.TempDir()
	tests := []struct {
		config string
		want   []string
	}{
		{"[server]\ncontrol_socket = 'elsewhere.ctl'\ndomain = 'typo'\n[[stage]]\nuse = 'forwrd'\n",
			[]string{"no proxy answers on " + filepath.Join(dir, "elsewhere.ctl")}},
		{"[server\ncontrol_socket = 'elsewhere.ctl'\n",
			[]string{"no proxy answers on " + filepath.Join(dir, SocketName), "config.toml does not parse, so it names no socket and ctl tried the default one: ", "config.toml:1:8: toml: expected character ]"}},
	}
	for i, tc := range tests {
		cfg := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(cfg, []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := Main([]string{"-config", cfg, "reload"}, &stdout, &stderr)
		for _, w := range tc.want {
			if code != 1 || !strings.Contains(stderr.String(), w) {
				t.Errorf("test %d: exit %d, stderr %q: want 1 and %q", i, code, stderr.String(), w)
			}
		}
	}
}

func TestSocketPath(t *testing.T) {
	tests := []struct {
		path, stateDir, socket, env, want string
	}{
		{"/etc/switchboard/config.toml", "", "", "", "/etc/switchboard/switchboard.ctl"},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "", "", "/var/lib/switchboard/switchboard.ctl"},
		{"/etc/switchboard/config.toml", "", "", "/run/switchboard", "/run/switchboard/switchboard.ctl"},
		{"/etc/switchboard/config.toml", "", "", "/run/a:/run/b", "/run/a/switchboard.ctl"}, // systemd lists several folders with colons
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "/run/switchboard/switchboard.ctl", "", "/run/switchboard/switchboard.ctl"},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "/run/switchboard/switchboard.ctl", "/run/switchboard", "/run/switchboard/switchboard.ctl"},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "/run/sb/x.ctl", "/run/other", "/run/sb/x.ctl"},
		{"/etc/switchboard/config.toml", "/var/lib/switchboard", "ctl.sock", "", "/var/lib/switchboard/ctl.sock"},
		{"/home/dev/sb/config.toml", "", "ctl.sock", "", "/home/dev/sb/ctl.sock"},
	}
	for i, tc := range tests {
		t.Setenv("RUNTIME_DIRECTORY", tc.env)
		cfg := &config.File{Path: tc.path, Server: config.Server{StateDir: tc.stateDir, ControlSocket: tc.socket}}
		if got := SocketPath(cfg); got != tc.want {
			t.Errorf("test %d: %q, want %q", i, got, tc.want)
		}
	}
}
