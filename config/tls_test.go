package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSSection(t *testing.T) {
	const stage = "\n[[stage]]\nuse='forward'\n"
	const tlsListen = "[server]\nlisten = ['tls://127.0.0.1:5061']\n"
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error; none: it parses
	}{
		{"no tls", "[server]\nlisten = ['udp://127.0.0.1:5060']" + stage, nil},
		{"pair", tlsListen + "[tls]\ncert = 'c.pem'\nkey = 'k.pem'" + stage, nil},
		{"sni and mutual", tlsListen + "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\nca = 'ca.pem'\nverify_clients = 'require'\nmin_version = '1.3'\nhandshake_timeout = '2s'\n[[tls.certificates]]\ncert = 'b.pem'\nkey = 'bk.pem'" + stage, nil},
		{"listener without pair", tlsListen + stage, []string{"c.toml: tls: cert: a tls:// or wss:// listener needs cert and key"}},
		{"wss listener without pair", "[server]\nlisten = ['wss://127.0.0.1:8443/sip']" + stage, []string{"c.toml: tls: cert: a tls:// or wss:// listener needs cert and key"}},
		{"key missing", tlsListen + "[tls]\ncert = 'c.pem'" + stage, []string{"tls: cert, key: set both or neither"}},
		{"unknown key", "[tls]\ncrt = 'c.pem'" + stage, []string{"tls: crt: unknown key, did you mean \"cert\"? (known: cert, key"}},
		{"verify without ca", "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\nverify_clients = 'require'" + stage, []string{`tls: verify_clients: "require" needs ca`}},
		{"bad verify", "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\nverify_clients = 'yes'" + stage, []string{`tls: verify_clients: "yes" is not one of off, optional, require`}},
		{"bad version", "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\nmin_version = '1.0'" + stage, []string{`tls: min_version: "1.0" is neither`}},
		{"bad timeout", "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\nhandshake_timeout = '5m'" + stage, []string{"tls: handshake_timeout: 5m0s is not between"}},
		{"sni pair half", "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\n[[tls.certificates]]\ncert = 'b.pem'" + stage, []string{"tls: certificates[0]: needs cert and key"}},
		{"sni without default", "[tls]\n[[tls.certificates]]\ncert = 'b.pem'\nkey = 'k.pem'" + stage, []string{"tls: certificates: needs cert and key"}},
		{"wrong type", "[tls]\ncert = 1" + stage, []string{"tls: cert:"}},
	}
	for i, tc := range tests {
		f, err := Parse("c.toml", []byte(tc.in))
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("test %d (%s): %v", i, tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("test %d (%s): parsed, want an error", i, tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("test %d (%s): error %q does not contain %q", i, tc.name, err, w)
			}
		}
		_ = f
	}
}

func TestTLSPathsResolve(t *testing.T) {
	in := "[tls]\ncert = 'live/c.pem'\nkey = '/etc/k.pem'\nca = 'ca.pem'\n[[tls.certificates]]\ncert = 'b.pem'\nkey = 'bk.pem'\n[[stage]]\nuse='forward'\n"
	f, err := Parse("/etc/switchboard/c.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []CertPair{{"/etc/switchboard/live/c.pem", "/etc/k.pem"}, {"/etc/switchboard/b.pem", "/etc/switchboard/bk.pem"}}
	got := f.TLS.Pairs()
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("pairs = %v, want %v", got, want)
	}
	if f.TLS.CA != filepath.FromSlash("/etc/switchboard/ca.pem") {
		t.Errorf("ca = %q", f.TLS.CA)
	}
	if f.TLS.MinVersion != "1.2" || f.TLS.VerifyClients != "off" || f.TLS.HandshakeTimeout.D() != DefaultHandshakeTimeout {
		t.Errorf("defaults = %+v", f.TLS)
	}
}
