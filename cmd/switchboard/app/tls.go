package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/certs"
)

// certOptions returns the certificate store's options for the [tls]
// section t.
func certOptions(t config.TLS) certs.Options {
	o := certs.Options{CA: t.CA, MinVersion: tls.VersionTLS12, HandshakeTimeout: t.HandshakeTimeout.D()}
	for _, p := range t.Pairs() {
		o.Pairs = append(o.Pairs, certs.Pair{Cert: p.Cert, Key: p.Key})
	}
	if t.MinVersion == "1.3" {
		o.MinVersion = tls.VersionTLS13
	}
	switch t.VerifyClients {
	case "optional":
		o.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		o.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return o
}

// openCerts loads the certificates of the [tls] section and watches their
// files, until stop is closed; it returns nil when the section names none.
func openCerts(cfg *config.File, log *slog.Logger, stop <-chan struct{}) (*certs.Store, error) {
	opts := certOptions(cfg.TLS)
	if len(opts.Pairs) == 0 {
		return nil, nil
	}
	s, err := certs.New(opts, log.With("service", "tls"))
	if err != nil {
		return nil, fmt.Errorf("%s: tls: %w", cfg.Path, err)
	}
	if err := s.Watch(stop); err != nil {
		log.Warn("tls certificates not watched: SIGHUP reloads them", "error", err)
	}
	return s, nil
}

// checkCerts is `validate`'s check of the [tls] files: each pair exists,
// parses, matches and has not expired; one expiring within
// certs.WarnBefore is a warning on stdout.
func checkCerts(t config.TLS, path string, now time.Time, stdout io.Writer) []string {
	var errs []string
	for _, p := range certOptions(t).Pairs {
		warning, err := certs.Check(p, now)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: tls: %v", path, err))
		}
		if warning != "" {
			fmt.Fprintf(stdout, "%s: tls: warning: %s\n", path, warning)
		}
	}
	if t.CA != "" {
		if err := certs.CheckCA(t.CA); err != nil {
			errs = append(errs, fmt.Sprintf("%s: tls: ca: %v", path, err))
		}
	}
	return errs
}
