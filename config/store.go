package config

import (
	"fmt"
	"net/url"
)

// Store is the [store] section: where the location service keeps the
// registrations.
type Store struct {
	// Backend is "memory" (lost on restart), "bolt" (the default: a bbolt
	// file, durable) or "redis" (shared by several instances).
	Backend string `toml:"backend"`
	// Path is the bolt file; a relative path is taken from
	// server.state_dir, or from the config file's directory without it.
	Path string `toml:"path"`
	// URL is the Redis to use: "redis://host:6379/0", "rediss://..." (TLS)
	// or "unix:///run/redis.sock".
	URL string `toml:"url"`
	// Prefix starts every Redis key, so that several deployments can
	// share one Redis.
	Prefix string `toml:"prefix"`
}

// Defaults of the [store] section.
const (
	DefaultStoreBackend = "bolt"
	DefaultStorePath    = "switchboard.db"
	DefaultStorePrefix  = "switchboard:"
)

// Defaults fills what the section left out: the bolt backend, and the
// path or prefix of the backend chosen.
func (s *Store) Defaults() {
	if s.Backend == "" {
		s.Backend = DefaultStoreBackend
	}
	if s.Backend == "bolt" && s.Path == "" {
		s.Path = DefaultStorePath
	}
	if s.Backend == "redis" && s.Prefix == "" {
		s.Prefix = DefaultStorePrefix
	}
}

// Validate returns one error per mistake, each starting with the key's
// name. Keys that the chosen backend does not use are mistakes too.
func (s *Store) Validate() []error {
	var errs []error
	switch s.Backend {
	case "memory", "bolt", "redis":
	default:
		return []error{fmt.Errorf("backend: %q is not one of memory, bolt, redis", s.Backend)}
	}
	if s.Backend == "bolt" {
		if s.Path == "" {
			errs = append(errs, fmt.Errorf("path: missing: the bolt backend needs a file"))
		}
	} else if s.Path != "" {
		errs = append(errs, fmt.Errorf("path: only the bolt backend uses a file, not %s", s.Backend))
	}
	if s.Backend == "redis" {
		if err := checkRedisURL(s.URL); err != nil {
			errs = append(errs, fmt.Errorf("url: %w", err))
		}
	} else {
		if s.URL != "" {
			errs = append(errs, fmt.Errorf("url: only the redis backend uses a URL, not %s", s.Backend))
		}
		if s.Prefix != "" {
			errs = append(errs, fmt.Errorf("prefix: only the redis backend uses a key prefix, not %s", s.Backend))
		}
	}
	return errs
}

// checkRedisURL checks the form of a Redis URL; the Redis client parses
// it in full when the store opens.
func checkRedisURL(s string) error {
	const want = `a URL such as "redis://127.0.0.1:6379/0", "rediss://..." or "unix:///run/redis.sock"`
	if s == "" {
		return fmt.Errorf("missing: the redis backend needs %s", want)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not %s for redis", s, want)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("%q has no host: it is not %s for redis", redact(u), want)
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%q has no socket path: it is not %s for redis", redact(u), want)
		}
	default:
		return fmt.Errorf("%q is not %s for redis", redact(u), want)
	}
	return nil
}

// redact returns u without its password, for error messages.
func redact(u *url.URL) string { return u.Redacted() }
