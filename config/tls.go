package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// TLS is the [tls] section: the certificates the TLS listeners present and
// how they check their peers. The files are read at start and again
// whenever they change or SIGHUP comes; the other keys change on restart.
type TLS struct {
	// Cert is the certificate chain and Key its private key, in PEM.
	// Relative paths resolve against the config file's folder.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// Certificates are more pairs, each presented to a client that asks
	// for one of its names (SNI); Cert and Key are presented otherwise.
	Certificates []CertPair `toml:"certificates"`
	// CA is a bundle of CA certificates, in PEM, that client certificates
	// must chain to; without it, only the system's roots verify servers.
	CA string `toml:"ca"`
	// VerifyClients is "off" (the default), "optional" (a certificate a
	// client sends must verify against CA) or "require" (mutual TLS: no
	// connection without one that verifies).
	VerifyClients string `toml:"verify_clients"`
	// MinVersion is the oldest TLS version accepted: "1.2" (the default)
	// or "1.3".
	MinVersion string `toml:"min_version"`
	// HandshakeTimeout bounds the TLS handshake of a new connection.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
}

// CertPair is one certificate chain file and its key file.
type CertPair struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// DefaultHandshakeTimeout is tls.handshake_timeout's default.
const DefaultHandshakeTimeout = 5 * time.Second

// Pairs returns the certificate pairs, the default one first, or none
// when the section sets no cert.
func (t *TLS) Pairs() []CertPair {
	if t.Cert == "" && t.Key == "" {
		return nil
	}
	return append([]CertPair{{Cert: t.Cert, Key: t.Key}}, t.Certificates...)
}

func (t *TLS) defaults() {
	if t.VerifyClients == "" {
		t.VerifyClients = "off"
	}
	if t.MinVersion == "" {
		t.MinVersion = "1.2"
	}
	if t.HandshakeTimeout == 0 {
		t.HandshakeTimeout = Duration(DefaultHandshakeTimeout)
	}
}

// resolve makes the file paths relative to dir absolute.
func (t *TLS) resolve(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	t.Cert, t.Key, t.CA = abs(t.Cert), abs(t.Key), abs(t.CA)
	for i := range t.Certificates {
		t.Certificates[i].Cert = abs(t.Certificates[i].Cert)
		t.Certificates[i].Key = abs(t.Certificates[i].Key)
	}
}

// validate returns one error per mistake, each starting with the key;
// listening says whether a TLS listener needs the section.
func (t *TLS) validate(listening bool) []error {
	var errs []error
	switch {
	case t.Cert == "" && t.Key == "" && len(t.Certificates) > 0:
		errs = append(errs, fmt.Errorf("certificates: needs cert and key, presented when no name matches"))
	case t.Cert == "" && t.Key == "" && listening:
		errs = append(errs, fmt.Errorf("cert: a tls:// or wss:// listener needs cert and key"))
	}
	if (t.Cert == "") != (t.Key == "") {
		errs = append(errs, fmt.Errorf("cert, key: set both or neither"))
	}
	for i, p := range t.Certificates {
		if p.Cert == "" || p.Key == "" {
			errs = append(errs, fmt.Errorf("certificates[%d]: needs cert and key", i))
		}
	}
	switch t.VerifyClients {
	case "off":
	case "optional", "require":
		if t.CA == "" {
			errs = append(errs, fmt.Errorf("verify_clients: %q needs ca, the bundle client certificates chain to", t.VerifyClients))
		}
	default:
		errs = append(errs, fmt.Errorf("verify_clients: %q is not one of off, optional, require", t.VerifyClients))
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("min_version: %q is neither \"1.2\" nor \"1.3\"", t.MinVersion))
	}
	if d := t.HandshakeTimeout.D(); d < 100*time.Millisecond || d > time.Minute {
		errs = append(errs, fmt.Errorf("handshake_timeout: %s is not between 100ms and 1m", d))
	}
	return errs
}

// listensTLS reports whether one of the listen URIs is a TLS or WSS
// listener.
func listensTLS(listen []string) bool {
	for _, l := range listen {
		if p, err := ParseListen(l); err == nil && (p.Network == "tls" || p.Network == "wss") {
			return true
		}
	}
	return false
}
