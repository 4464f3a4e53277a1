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

// ID names one dialog: its Call-ID and the tags of its two ends, in an
// order of their own (NewID), so that a request finds its dialog in one
// look-up whichever end sent it. A dialog that a SUBSCRIBE or REFER
// creates has one tag until its 2xx comes: its NOTIFYs may arrive first
// (RFC 6665 4.1.2.4).
type ID struct {
	CallID string
	Tags   [2]string
}

// NewID returns the ID of the dialog of callID between the tags a and b.
func NewID(callID, a, b string) ID {
	if b < a {
		a, b = b, a
	}
	return ID{CallID: callID, Tags: [2]string{a, b}}
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
	// Addr and Transport are where the end's messages reached the proxy
	// from: the proxy sends the requests for the end there, whatever its
	// Contact names (a Contact is whatever the end wrote; the address is
	// where it is).
	Addr      netip.AddrPort `json:"addr"`
	Transport string         `json:"transport"`
}

// Dialog is what the proxy knows of one dialog it record-routed.
type Dialog struct {
	// CallerTag is the tag of the end that sent the request that created
	// the dialog.
	CallerTag string `json:"caller_tag"`
	Caller    End    `json:"caller"`
	Callee    End    `json:"callee"`
	// Confirmed is true once a 2xx established the dialog; before, it is
	// early (a provisional response with a To tag).
	Confirmed bool `json:"confirmed,omitempty"`
	// Ended is true once a BYE was answered: until the dialog expires, a
	// little later, it carries only what may follow a BYE (a crossing
	// BYE, the last NOTIFYs of a transfer).
	Ended bool `json:"ended,omitempty"`
	// Expires is when the store forgets the dialog unless a request in it
	// comes first.
	Expires time.Time `json:"expires"`
	// CallerCSeqShift is what the proxy adds to the CSeq numbers of the
	// caller's requests towards the callee: one for each challenge it
	// answered itself on the INVITE (a trunk's 401 or 407), since the
	// callee saw that INVITE with a higher number than the caller wrote.
	CallerCSeqShift uint32 `json:"caller_cseq_shift,omitempty"`
}

// Ends returns the end that sent a request with From tag from, and the
// end it goes to.
func (d *Dialog) Ends(from string) (sender, receiver *End) {
	if from == d.CallerTag {
		return &d.Caller, &d.Callee
	}
	return &d.Callee, &d.Caller
}

// Store keeps dialogs. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the dialog id names, unless it expired by now.
	Get(id ID, now time.Time) (Dialog, bool, error)
	// Update passes the dialog id names (and whether the store has it) to
	// fn, and stores what fn leaves in it when fn returns true, atomically
	// with respect to other Updates of the dialog: two requests of one
	// dialog that each change one end do not lose a change.
	Update(id ID, now time.Time, fn func(d *Dialog, found bool) bool) error
	// Delete forgets the dialog.
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
