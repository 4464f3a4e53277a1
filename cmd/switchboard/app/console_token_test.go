package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
)

// TestMaskToken checks that the console's view of the config hides the
// admin token, only that of [http], and that the text sent back gets the
// file's token in place of the mask.
func TestMaskToken(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	tests := []struct {
		file, masked, value string
	}{
		{"[http]\nlisten = \"127.0.0.1:8080\"\ntoken = \"" + secret + "\" # admin\n", "[http]\nlisten = \"127.0.0.1:8080\"\ntoken = " + tokenMask + " # admin\n", `"` + secret + `"`},
		{"[http]\n  token='" + secret + "'\n", "[http]\n  token=" + tokenMask + "\n", "'" + secret + "'"},
		{"http.token = \"" + secret + "\"\n", "http.token = " + tokenMask + "\n", `"` + secret + `"`},
		{"[http] # the admin API\ntoken = \"a\\\"b\"\n", "[http] # the admin API\ntoken = " + tokenMask + "\n", `"a\"b"`},
		// Another table's token, and a token after [http] ended, stay.
		{"[[stage]]\ntoken = \"x\"\n[http]\nlisten = \"a\"\n[trunk]\ntoken = \"y\"\n", "[[stage]]\ntoken = \"x\"\n[http]\nlisten = \"a\"\n[trunk]\ntoken = \"y\"\n", ""},
		{"[capture]\nhttp.token = \"x\"\n", "[capture]\nhttp.token = \"x\"\n", ""},
	}
	for i, tc := range tests {
		masked, value := maskToken(tc.file)
		if masked != tc.masked || value != tc.value {
			t.Errorf("test %d: masked\n%s(value %s), want\n%s(value %s)", i, masked, value, tc.masked, tc.value)
		}
		back, bad := unmaskToken(masked, tc.file)
		if bad != nil || back != tc.file {
			t.Errorf("test %d: unmasked to\n%s(%v), want the file", i, back, bad)
		}
	}
	// The mask where the file has no token is refused at its line, never
	// saved.
	if _, bad := unmaskToken("[http]\n\ntoken = "+tokenMask+"\n", "[http]\n"); bad == nil || bad.Line != 3 || !strings.Contains(bad.Message, "has none") {
		t.Errorf("a mask without a token in the file: %+v, want an error at line 3", bad)
	}
}

// TestStartConsoleLog checks the startup line of `make run`'s console: its
// URL, and the token file by an absolute path although the config was
// named by a relative one, never the token itself.
func TestStartConsoleLog(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := &config.File{Path: "config.toml"}
	cfg.HTTP.Listen = "127.0.0.1:8080"
	var log bytes.Buffer
	if _, h := startConsole(cfg, &operations{}, slog.New(slog.NewTextHandler(&log, nil))); h == nil {
		t.Fatalf("no console:\n%s", log.String())
	}
	token, err := os.ReadFile(filepath.Join(dir, "console.token"))
	if err != nil {
		t.Fatal(err)
	}
	want := "msg=console url=http://127.0.0.1:8080/console/ token=" + filepath.Join(dir, "console.token")
	if !strings.Contains(log.String(), want) || strings.Contains(log.String(), strings.TrimSpace(string(token))) {
		t.Errorf("startup log:\n%swant %q, and never the token", log.String(), want)
	}
}

// TestStartConsoleOff checks that console = false keeps the console off,
// says so, and still gives the admin API its token.
func TestStartConsoleOff(t *testing.T) {
	dir := t.TempDir()
	off := false
	cfg := &config.File{Path: filepath.Join(dir, "config.toml")}
	cfg.HTTP = config.HTTP{Listen: "127.0.0.1:8080", Console: &off}
	var log bytes.Buffer
	httpCfg, h := startConsole(cfg, &operations{}, slog.New(slog.NewTextHandler(&log, nil)))
	if h != nil {
		t.Error("console = false: the console was made")
	}
	if !strings.Contains(log.String(), `msg="console off" reason="http.console = false"`) {
		t.Errorf("startup log:\n%swant a line that says why the console is off", log.String())
	}
	if httpCfg.Token == "" {
		t.Error("console = false: the admin API lost its token")
	}
}

// TestRecorderFor checks that calls are recorded only where a console can
// read them: with the [http] listener on, and the console not turned off.
func TestRecorderFor(t *testing.T) {
	on, off := true, false
	for _, c := range []struct {
		name string
		http config.HTTP
		want bool
	}{
		{"no listener", config.HTTP{}, false},
		{"a token but no listener", config.HTTP{Token: "0123456789abcdef"}, false},
		{"a listener", config.HTTP{Listen: "127.0.0.1:8080"}, true},
		{"a listener over TLS", config.HTTP{Listen: "192.0.2.1:8443", TLS: true}, true},
		{"the console on", config.HTTP{Listen: "127.0.0.1:8080", Console: &on}, true},
		{"the console off", config.HTTP{Listen: "127.0.0.1:8080", Console: &off}, false},
	} {
		if got := recorderFor(c.http) != nil; got != c.want {
			t.Errorf("%s: recorder %v, want %v", c.name, got, c.want)
		}
	}
}
