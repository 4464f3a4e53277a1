// Package ctl is `switchboard ctl`, the operator's command for a running
// proxy, like kamcmd: it speaks HTTP over the proxy's control socket, a
// unix socket guarded by its file mode, to the same admin handlers that
// serve the HTTP admin API. This package holds the socket's path, the
// types of the answers, and the command.
package ctl

import (
	"time"
)

// Registration is one AOR's bindings.
type Registration struct {
	AOR      string    `json:"aor"`
	Bindings []Binding `json:"bindings"`
}

// Binding is one registered contact.
type Binding struct {
	Contact   string    `json:"contact"`
	Instance  string    `json:"instance,omitempty"`
	Expires   time.Time `json:"expires"`
	ExpiresIn int       `json:"expires_in"`
	Received  string    `json:"received,omitempty"`
	Transport string    `json:"transport,omitempty"`
	// UserAgent is the User-Agent of the REGISTER that made the binding.
	UserAgent string `json:"user_agent,omitempty"`
	// NAT is true for a binding registered from behind NAT, reached at
	// Received (docs/nat.md).
	NAT bool `json:"nat"`
	// Node and Local name the node and socket that hold a UDP binding
	// from behind NAT, and ping it (docs/nat.md#keepalives).
	Node   string   `json:"node,omitempty"`
	Local  string   `json:"local,omitempty"`
	Path   []string `json:"path,omitempty"`
	CallID string   `json:"call_id"`
	CSeq   uint32   `json:"cseq"`
}

// Unregistered says how many bindings an unregister removed.
type Unregistered struct {
	AOR     string `json:"aor"`
	Removed int    `json:"removed"`
}

// Outcome is what one reload did.
type Outcome struct {
	Result string    `json:"result"` // "applied", "unchanged" or "failed"
	Hash   string    `json:"hash"`   // the config's hash (of the file read, even when it failed)
	Errors []string  `json:"errors,omitempty"`
	At     time.Time `json:"at"`
	// NeedsRestart are the keys changed that apply on restart only.
	NeedsRestart []string `json:"needs_restart,omitempty"`
}

// Config is the config in force, the last reload, and the overrides made
// by ctl that hold until the process stops.
type Config struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
	// FileHash is the hash of the file as it is now; it differs from Hash
	// after an edit not yet reloaded, or one that failed to.
	FileHash   string    `json:"file_hash,omitempty"`
	Stages     []string  `json:"stages"`
	LastReload *Outcome  `json:"last_reload,omitempty"`
	Overrides  Overrides `json:"overrides"`
}

// Overrides are the changes ctl made that no config holds.
type Overrides struct {
	// LogLevel replaces [log] level; "" when the config's holds.
	LogLevel string `json:"log_level,omitempty"`
	// Trace are the users traced live.
	Trace []string `json:"trace,omitempty"`
}

// Problem is an answer's error.
type Problem struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}
