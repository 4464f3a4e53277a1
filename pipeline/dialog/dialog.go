// Package dialog keeps the dialogs the proxy record-routed (RFC 3261 12),
// so that an in-dialog request is relayed only within a dialog the proxy
// saw established, and only towards one of its two ends. A Store outlives
// every pipeline, and the durable ones outlive a restart.
package dialog

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ID names one dialog: its Call-ID and the tags of its caller (the From
// tag of the request that created it) and of its callee (the To tag of the
// response that did). A dialog created by a SUBSCRIBE or REFER whose 2xx
// has not come yet is stored with no CalleeTag: its NOTIFYs may arrive
// first (RFC 6665 4.1.2.4).
type ID struct {
	CallID    string
	CallerTag string
	CalleeTag string
}

// End is one side of a dialog, as the proxy relays requests to it.
type End struct {
	// Target is the end's remote target (its Contact URI), as TargetKey
	// writes it; Previous is the one its last target refresh replaced,
	// which requests already on their way may still name.
	Target   string `json:"target"`
	Previous string `json:"previous,omitempty"`
	// Next is the Route entry that follows the proxy's own towards this
	// end (the next proxy that record-routed), as TargetKey writes it,
	// or "" when the proxy sends requests straight to the end.
	Next string `json:"next,omitempty"`
	// Source is the address this end's messages reach the proxy from.
	Source netip.Addr `json:"source"`
}

// Dialog is what the proxy knows of one dialog it record-routed.
type Dialog struct {
	Caller End `json:"caller"`
	Callee End `json:"callee"`
	// Confirmed is true once a 2xx established the dialog; before, it is
	// early (a provisional response with a To tag).
	Confirmed bool `json:"confirmed,omitempty"`
	// Expires is when the store forgets the dialog unless a request in it
	// comes first.
	Expires time.Time `json:"expires"`
}

// Store keeps dialogs. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the dialog id names, unless it ended or expired by now.
	Get(id ID, now time.Time) (Dialog, bool, error)
	// Put stores d under id until d.Expires.
	Put(id ID, d Dialog, now time.Time) error
	// Replace stores d under id only if the store still has the dialog,
	// so that a target refresh never brings back one that ended.
	Replace(id ID, d Dialog, now time.Time) error
	// Delete ends the dialog.
	Delete(id ID) error
	// Sweep forgets the dialogs that expired by now and returns how many.
	Sweep(now time.Time) int
	// Close releases the store.
	Close() error
}

// TargetKey writes a URI as dialogs compare them: the scheme, the user,
// the host in lower case, the port (5060 or 5061 when it has none) and the
// transport (udp when it names none). Two URIs with the same key reach the
// same user at the same place; other parameters do not change where a
// request goes.
func TargetKey(u *sip.Uri) string {
	if u == nil || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		scheme = "sip"
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if scheme == "sips" {
			port = 5061
		}
	}
	transport := "udp"
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		transport = strings.ToLower(tp)
	}
	var b strings.Builder
	b.Grow(len(scheme) + len(u.User) + len(u.Host) + len(transport) + 20)
	b.WriteString(scheme)
	b.WriteByte(':')
	if u.User != "" {
		b.WriteString(u.User)
		b.WriteByte('@')
	}
	b.WriteString(strings.ToLower(strings.Trim(u.Host, "[]")))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(port))
	b.WriteString(";transport=")
	b.WriteString(transport)
	return b.String()
}

// Reaches reports whether a request whose Request-URI has the key target
// goes to this end: its Contact, or the one its last target refresh
// replaced.
func (e End) Reaches(target string) bool {
	return target != "" && (target == e.Target || target == e.Previous)
}

// Refresh moves the end to a new Contact (a target refresh), keeping the
// one it replaces as Previous. It reports whether the end changed.
func (e *End) Refresh(target string) bool {
	if target == "" || target == e.Target {
		return false
	}
	e.Previous, e.Target = e.Target, target
	return true
}
