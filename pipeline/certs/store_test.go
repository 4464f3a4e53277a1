package certs

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func newLog() (*slog.Logger, *stagetest.Logs) {
	b := &stagetest.Logs{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// presented returns the certificate a handshake for name would get.
func presented(t *testing.T, s *Store, name string) *tls.Certificate {
	t.Helper()
	hello := &tls.ClientHelloInfo{ServerName: name}
	cfg, err := s.ServerConfig().GetConfigForClient(hello)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.GetCertificate(hello)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writePair(t *testing.T, ca *certstest.CA, cert, key string, names ...string) {
	t.Helper()
	c, k := ca.Issue(t, time.Now().Add(24*time.Hour), names...)
	certstest.Write(t, cert, c)
	certstest.Write(t, key, k)
}

func TestSNI(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	writePair(t, ca, filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key"), "sip.example.org")
	writePair(t, ca, filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key"), "*.example.net", "example.net")
	log, _ := newLog()
	s, err := New(Options{Pairs: []Pair{{filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key")}, {filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key")}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"", "sip.example.org"},
		{"sip.example.org", "sip.example.org"},
		{"pbx.example.net", "*.example.net"},
		{"example.net", "*.example.net"},
		{"other.org", "sip.example.org"},
	}
	for i, tc := range tests {
		if got := presented(t, s, tc.name).Leaf.DNSNames[0]; got != tc.want {
			t.Errorf("test %d: %q gets %q, want %q", i, tc.name, got, tc.want)
		}
	}
}

func TestNewFails(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	cert, key, other := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "o.pem")
	writePair(t, ca, cert, key, "a.example.org")
	writePair(t, ca, filepath.Join(dir, "x.pem"), other, "b.example.org")
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "no certificate"},
		{Options{Pairs: []Pair{{filepath.Join(dir, "none.pem"), key}}}, "no such file"},
		{Options{Pairs: []Pair{{cert, other}}}, "private key does not match"},
		{Options{Pairs: []Pair{{cert, key}}, CA: key}, "no PEM certificate"},
	}
	log, _ := newLog()
	for i, tc := range tests {
		if _, err := New(tc.opts, log); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: err = %v, want %q", i, err, tc.want)
		}
	}
}

// TestMismatchKeptOut is a renewal written certificate first: until the
// key arrives the old pair stays, and a log line says why.
func TestMismatchKeptOut(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, ca, cert, key, "old.example.org")
	log, logs := newLog()
	s, err := New(Options{Pairs: []Pair{{cert, key}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	newCert, newKey := ca.Issue(t, time.Now().Add(48*time.Hour), "new.example.org")
	certstest.Write(t, cert, newCert)
	if n := s.Reload(); n != 0 {
		t.Errorf("a mismatched pair replaced %d", n)
	}
	if got := presented(t, s, "").Leaf.DNSNames[0]; got != "old.example.org" {
		t.Errorf("presented %q, want the old pair", got)
	}
	if !strings.Contains(logs.String(), "tls certificate not reloaded") || !strings.Contains(logs.String(), "private key does not match") {
		t.Errorf("no clear log line: %s", logs)
	}
	certstest.Write(t, key, newKey)
	if n := s.Reload(); n != 1 {
		t.Errorf("the matching pair replaced %d, want 1", n)
	}
	if got := presented(t, s, "").Leaf.DNSNames[0]; got != "new.example.org" {
		t.Errorf("presented %q, want the new pair", got)
	}
	if n := s.Reload(); n != 0 {
		t.Errorf("unchanged files replaced %d", n)
	}
	if exp := s.Expiry()[cert]; !exp.Equal(presented(t, s, "").Leaf.NotAfter) {
		t.Errorf("expiry = %v", exp)
	}
}

// TestSymlinkSwap renews as certbot does: new files in archive/, then the
// links in live/ replaced by rename. The watcher sees it.
func TestSymlinkSwap(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	archive, live := filepath.Join(dir, "archive"), filepath.Join(dir, "live")
	for _, d := range []string{archive, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writePair(t, ca, filepath.Join(archive, "cert1.pem"), filepath.Join(archive, "privkey1.pem"), "one.example.org")
	link := func(target, name string) {
		tmp := filepath.Join(live, name+".tmp")
		if err := os.Symlink(filepath.Join("..", "archive", target), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(live, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("cert1.pem", "cert.pem")
	link("privkey1.pem", "privkey.pem")
	log, _ := newLog()
	s, err := New(Options{Pairs: []Pair{{filepath.Join(live, "cert.pem"), filepath.Join(live, "privkey.pem")}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	if err := s.Watch(stop); err != nil {
		t.Fatal(err)
	}
	writePair(t, ca, filepath.Join(archive, "cert2.pem"), filepath.Join(archive, "privkey2.pem"), "two.example.org")
	link("cert2.pem", "cert.pem")
	link("privkey2.pem", "privkey.pem")
	deadline := time.Now().Add(10 * time.Second)
	for presented(t, s, "").Leaf.DNSNames[0] != "two.example.org" {
		if time.Now().After(deadline) {
			t.Fatal("the swapped pair was not loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A file written in place behind the link is seen too.
	writePair(t, ca, filepath.Join(archive, "cert2.pem"), filepath.Join(archive, "privkey2.pem"), "three.example.org")
	for presented(t, s, "").Leaf.DNSNames[0] != "three.example.org" {
		if time.Now().After(deadline) {
			t.Fatal("the pair rewritten behind the link was not loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCheck(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	now := time.Now()
	pair := func(name string, notAfter time.Time) Pair {
		p := Pair{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")}
		c, k := ca.Issue(t, notAfter, name+".example.org")
		certstest.Write(t, p.Cert, c)
		certstest.Write(t, p.Key, k)
		return p
	}
	good, soon, expired := pair("good", now.Add(90*24*time.Hour)), pair("soon", now.Add(10*24*time.Hour)), pair("expired", now.Add(-time.Minute))
	certstest.Write(t, filepath.Join(dir, "junk.pem"), []byte("not PEM"))
	tests := []struct {
		pair          Pair
		wantErr, warn string
	}{
		{good, "", ""},
		{soon, "", "expires in "},
		{expired, "expired on", ""},
		{Pair{good.Cert, soon.Key}, "private key does not match", ""},
		{Pair{filepath.Join(dir, "none.pem"), good.Key}, "no such file", ""},
		{Pair{filepath.Join(dir, "junk.pem"), good.Key}, "failed to find any PEM data", ""},
	}
	for i, tc := range tests {
		warn, err := Check(tc.pair, now)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("test %d: err = %v, want %q", i, err, tc.wantErr)
		}
		if (warn == "") != (tc.warn == "") || !strings.Contains(warn, tc.warn) {
			t.Errorf("test %d: warning = %q, want %q", i, warn, tc.warn)
		}
	}
}
