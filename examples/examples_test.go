// Package examples holds ready config files; this test builds every one.
package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/certs"
	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

// TestExamplesBuild builds the pipeline of every examples/*.toml, of the
// default config.toml and of the .deb's packaging/config.toml, as `switchboard validate` does. Each is built from a
// copy in a temporary directory, beside copies of the files it may load
// (users files), so that the files stages open (call logs) are made there
// rather than in the source tree.
func TestExamplesBuild(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../config.toml", "../packaging/config.toml")
	if len(files) < 2 {
		t.Fatalf("no examples found: %v", files)
	}
	beside, _ := filepath.Glob("*.txt")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range append([]string{f}, beside...) {
				copyFile(t, name, filepath.Join(dir, filepath.Base(name)))
			}
			cfg, err := config.Load(filepath.Join(dir, filepath.Base(f)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.Check(cfg, nil); err != nil {
				t.Fatal(strings.ReplaceAll(err.Error(), dir+"/", ""))
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInternetExample loads internet.toml with test certificates in place
// of Let's Encrypt's files, and checks what `switchboard validate` checks
// of them, and that it listens on UDP, TCP, TLS and WSS.
func TestInternetExample(t *testing.T) {
	data, err := os.ReadFile("internet.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := certstest.NewCA(t)
	c, k := ca.Issue(t, time.Now().Add(90*24*time.Hour), "sip.example.org")
	certstest.Write(t, filepath.Join(dir, "fullchain.pem"), c)
	certstest.Write(t, filepath.Join(dir, "privkey.pem"), k)
	live := "/etc/letsencrypt/live/sip.example.org/"
	if !strings.Contains(string(data), live) {
		t.Fatalf("internet.toml names no certificate in %s", live)
	}
	certstest.Write(t, filepath.Join(dir, "internet.toml"), []byte(strings.ReplaceAll(string(data), live, dir+"/")))
	copyFile(t, "secure-users.txt", filepath.Join(dir, "secure-users.txt"))
	cfg, err := config.Load(filepath.Join(dir, "internet.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Check(cfg, nil); err != nil {
		t.Fatal(err)
	}
	var networks []string
	for _, l := range cfg.Server.Listen {
		p, err := config.ParseListen(l)
		if err != nil {
			t.Fatal(err)
		}
		networks = append(networks, p.Network)
	}
	if got := strings.Join(networks, " "); got != "udp tcp tls wss" {
		t.Errorf("listeners %q, want udp tcp tls wss", got)
	}
	for _, p := range cfg.TLS.Pairs() {
		warning, err := certs.Check(certs.Pair{Cert: p.Cert, Key: p.Key}, time.Now())
		if err != nil || warning != "" {
			t.Errorf("%s: %v %s", p.Cert, err, warning)
		}
	}
}
