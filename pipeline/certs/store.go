// Package certs keeps the certificates of the TLS listeners: it loads each
// pair of files, presents the pair a client asks for by name (SNI), and
// loads them again when the files change or on SIGHUP, so that new
// handshakes take a renewed certificate while connections already up keep
// theirs. It outlives every Pipeline.
package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pair names a certificate chain file and its private key file, in PEM.
type Pair struct {
	Cert, Key string
}

// Options say what a Store loads and how its listeners check clients.
type Options struct {
	// Pairs are the certificates, the one presented when no name matches
	// first.
	Pairs []Pair
	// CA is the bundle client certificates must chain to; "" for none.
	CA string
	// ClientAuth is how client certificates are asked for and checked.
	ClientAuth tls.ClientAuthType
	// MinVersion is the oldest TLS version accepted (tls.VersionTLS12...).
	MinVersion uint16
	// HandshakeTimeout bounds the handshake of each accepted connection.
	HandshakeTimeout time.Duration
}

// Store holds the loaded certificates. Its methods are safe for
// concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger
	// mu makes one Reload at a time.
	mu    sync.Mutex
	state atomic.Pointer[state]
}

// state is what one load produced: a certificate per pair (the previous
// one where the files did not load), the CA pool, and the server config
// built on them.
type state struct {
	certs  []*tls.Certificate
	sums   [][32]byte // of each pair's files, to tell a change
	ca     *x509.CertPool
	caSum  [32]byte
	server *tls.Config
}

// New loads every pair and the CA bundle. It fails when one does not load:
// at start there is no previous pair to keep.
func New(opts Options, log *slog.Logger) (*Store, error) {
	if len(opts.Pairs) == 0 {
		return nil, errors.New("no certificate: set cert and key")
	}
	s := &Store{opts: opts, log: log}
	st := &state{certs: make([]*tls.Certificate, len(opts.Pairs)), sums: make([][32]byte, len(opts.Pairs))}
	for i, p := range opts.Pairs {
		c, sum, err := load(p)
		if err != nil {
			return nil, err
		}
		st.certs[i], st.sums[i] = c, sum
	}
	if opts.CA != "" {
		pool, sum, err := loadCA(opts.CA)
		if err != nil {
			return nil, err
		}
		st.ca, st.caSum = pool, sum
	}
	s.state.Store(s.withConfig(st))
	return s, nil
}

// Reload reads the files again. A pair whose files changed and now load
// and match replaces the one presented; a pair that fails keeps the one
// before it, with a log line saying so (some tools write the certificate
// before the key: the next change brings the key). It returns how many
// pairs and bundles were replaced.
func (s *Store) Reload() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Load()
	st := &state{certs: append([]*tls.Certificate(nil), old.certs...), sums: append([][32]byte(nil), old.sums...), ca: old.ca, caSum: old.caSum}
	replaced := 0
	for i, p := range s.opts.Pairs {
		c, sum, err := load(p)
		if err != nil {
			s.log.Warn("tls certificate not reloaded: the previous one stays until the files hold a matching pair", "cert", p.Cert, "key", p.Key, "error", err)
			continue
		}
		if sum == st.sums[i] {
			continue
		}
		st.certs[i], st.sums[i] = c, sum
		replaced++
		s.log.Info("tls certificate loaded", "cert", p.Cert, "names", strings.Join(names(c.Leaf), ","), "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if s.opts.CA != "" {
		pool, sum, err := loadCA(s.opts.CA)
		switch {
		case err != nil:
			s.log.Warn("tls ca bundle not reloaded: the previous one stays", "ca", s.opts.CA, "error", err)
		case sum != st.caSum:
			st.ca, st.caSum = pool, sum
			replaced++
			s.log.Info("tls ca bundle loaded", "ca", s.opts.CA)
		}
	}
	if replaced > 0 {
		s.state.Store(s.withConfig(st))
	}
	return replaced
}

// withConfig builds st's server config: each handshake takes the config
// of the state current when it starts (ServerConfig), so a reload changes
// new handshakes only.
func (s *Store) withConfig(st *state) *state {
	st.server = &tls.Config{
		MinVersion: s.opts.MinVersion,
		ClientAuth: s.opts.ClientAuth,
		ClientCAs:  st.ca,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return st.certificate(hello.ServerName), nil
		},
	}
	return st
}

// ServerConfig returns the config of the TLS listeners.
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: s.opts.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.state.Load().server, nil
		},
	}
}

// ClientConfig returns the config of the TLS connections the proxy
// dials: servers verified against the CA bundle given at start, or the
// system's roots without one, and the default pair presented to a server
// that asks for a client certificate.
func (s *Store) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: s.opts.MinVersion,
		RootCAs:    s.state.Load().ca,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.state.Load().certs[0], nil
		},
	}
}

// Expiry returns when each certificate presented expires, by its file.
func (s *Store) Expiry() map[string]time.Time {
	st := s.state.Load()
	out := make(map[string]time.Time, len(st.certs))
	for i, c := range st.certs {
		out[s.opts.Pairs[i].Cert] = c.Leaf.NotAfter
	}
	return out
}

// Files returns the files the store reads, for the watcher.
func (s *Store) Files() []string {
	var out []string
	for _, p := range s.opts.Pairs {
		out = append(out, p.Cert, p.Key)
	}
	if s.opts.CA != "" {
		out = append(out, s.opts.CA)
	}
	return out
}

// certificate returns the first pair valid for name, or the default one.
func (st *state) certificate(name string) *tls.Certificate {
	if name != "" {
		for _, c := range st.certs {
			if c.Leaf.VerifyHostname(name) == nil {
				return c
			}
		}
	}
	return st.certs[0]
}

// load reads a pair: both files, a key that matches the certificate.
func load(p Pair) (*tls.Certificate, [32]byte, error) {
	certPEM, err := os.ReadFile(p.Cert)
	if err != nil {
		return nil, [32]byte{}, err
	}
	keyPEM, err := os.ReadFile(p.Key)
	if err != nil {
		return nil, [32]byte{}, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("%s, %s: %w", p.Cert, p.Key, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, [32]byte{}, fmt.Errorf("%s: %w", p.Cert, err)
		}
	}
	return &c, sha256.Sum256(bytes.Join([][]byte{certPEM, keyPEM}, []byte{0})), nil
}

// loadCA reads a CA bundle.
func loadCA(path string) (*x509.CertPool, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, [32]byte{}, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, sha256.Sum256(data), nil
}

// names returns the names a certificate is for.
func names(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 && c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	return out
}
