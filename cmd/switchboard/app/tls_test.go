package app

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
)

func TestCheckCerts(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	write := func(name string, notAfter time.Time) config.CertPair {
		c, k := ca.Issue(t, notAfter, name+".example.org")
		p := config.CertPair{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
		certstest.Write(t, p.Cert, c)
		certstest.Write(t, p.Key, k)
		return p
	}
	now := time.Now()
	good, soon := write("good", now.Add(60*24*time.Hour)), write("soon", now.Add(5*24*time.Hour))
	tests := []struct {
		tls        config.TLS
		errs, warn string
	}{
		{config.TLS{Cert: good.Cert, Key: good.Key}, "", ""},
		{config.TLS{Cert: good.Cert, Key: good.Key, Certificates: []config.CertPair{soon}}, "", "c.toml: tls: warning: " + soon.Cert + ": expires in"},
		{config.TLS{Cert: good.Cert, Key: soon.Key}, "c.toml: tls: " + good.Cert, ""},
		{config.TLS{Cert: good.Cert, Key: good.Key, CA: good.Key}, "c.toml: tls: ca: ", ""},
	}
	for i, tc := range tests {
		var out bytes.Buffer
		errs := strings.Join(checkCerts(tc.tls, "c.toml", now, &out), "\n")
		if (errs == "") != (tc.errs == "") || !strings.Contains(errs, tc.errs) {
			t.Errorf("test %d: errors %q, want %q", i, errs, tc.errs)
		}
		if (out.Len() == 0) != (tc.warn == "") || !strings.Contains(out.String(), tc.warn) {
			t.Errorf("test %d: stdout %q, want %q", i, out.String(), tc.warn)
		}
	}
}
