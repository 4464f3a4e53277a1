// Package location is the location service of RFC 3261 section 10: the
// bindings of each address-of-record (AOR) to the contacts where its devices
// can be reached. A Store outlives every pipeline: the registrar stage writes
// to it and the location stage reads it, across reloads.
package location

import (
	"strings"
	"time"
)

// Binding is one registered contact of an AOR.
type Binding struct {
	// AOR is the key of the address-of-record, as the registrar made it
	// (the user name alone, or user@domain; see pipeline.AORKey).
	AOR string
	// Contact is the Contact header's URI as the device sent it.
	Contact string
	// Params holds the Contact header's parameters other than expires
	// (for example +sip.instance, reg-id, q), as written.
	Params string
	// Instance is the +sip.instance parameter, unquoted, if any.
	Instance string
	// CallID and CSeq order REGISTER requests for this binding (RFC 3261 10.3).
	CallID string
	CSeq   uint32
	// Expires is when the binding lapses.
	Expires time.Time
	// Received is the source address ("ip:port") the REGISTER came from and
	// Transport its transport ("UDP", "TCP", "TLS", "WS", "WSS"); a request for a
	// device behind NAT, or on a TCP or WebSocket connection, is sent there.
	Received  string
	Transport string
	// NAT is true when the REGISTER came from behind NAT (see
	// pipeline.DetectNAT) and the registrar reaches such bindings at
	// Received: a UDP binding is then sent to Received, not its Contact.
	NAT bool `json:",omitempty"`
	// Node and Local name where a UDP binding from behind NAT is held:
	// the ID of the node whose socket Local ("ip:port") its REGISTER came
	// in on. Only that socket reaches the phone through its NAT, so only
	// that node pings it, after a restart too (see Shared). Empty for
	// other bindings, and for those written before the fields existed.
	Node  string `json:",omitempty"`
	Local string `json:",omitempty"`
	// UserAgent is the REGISTER's User-Agent header, cut to
	// MaxUserAgent bytes, for the admin API and the console; empty when
	// the device sent none, and for bindings written before the field
	// existed.
	UserAgent string `json:",omitempty"`
	// Path is the Path header set of the REGISTER (RFC 3327), if any.
	Path []string
	// Updated is when the binding was last written.
	Updated time.Time
}

// MaxUserAgent bounds Binding.UserAgent, so that a device cannot make the
// store hold a header of any size for it.
const MaxUserAgent = 256

// Store keeps bindings. Implementations are safe for concurrent use.
type Store interface {
	// Lookup returns the live bindings of an AOR (expired ones are never
	// returned) and whether the AOR was known: it has, or recently had,
	// bindings.
	Lookup(aor string, now time.Time) (bindings []Binding, known bool, err error)
	// Update reads the live bindings of aor, passes them to fn and stores
	// what fn returns, atomically with respect to other Updates of the
	// same AOR. If fn fails, nothing changes and its error is returned.
	Update(aor string, now time.Time, fn func(current []Binding) ([]Binding, error)) ([]Binding, error)
	// Sweep removes the bindings that expired by now and returns how many.
	Sweep(now time.Time) int
	// Count returns the number of AORs with live bindings and of bindings.
	// It reads the whole store: it is for metrics and the admin API.
	Count() (aors, bindings int)
	// AORs returns the number of AORs with live bindings at now, cheaply
	// enough to be asked on each REGISTER (the registrar's max_aors
	// does). It may also count the AORs whose last binding lapsed since
	// the last Sweep; once a Sweep has run at now, it is exact. Only a Store that
	// cannot reach its backend fails.
	AORs(now time.Time) (int, error)
	// Each calls fn with every AOR that has live bindings at now, and
	// copies of them, in no set order, until fn returns false. It reads the
	// whole store: it is for the admin API, not for each request.
	Each(now time.Time, fn func(aor string, bindings []Binding) bool) error
	// Close releases the store.
	Close() error
}

// Holder is a Store that keeps count of what it holds, so that the
// metrics, read at every scrape, need not read the whole store as Count
// does (at a million registrations that is a second of CPU).
type Holder interface {
	// Held returns the number of AORs with bindings and of bindings: the
	// live ones and those lapsed since the last Sweep that ran (the
	// engine calls Sweep every second; bolt's runs every 30 s). Once a
	// Sweep has run at now it equals Count at now.
	Held() (aors, bindings int)
}

// RegID returns the reg-id parameter of the binding's Contact, which the
// registrar keeps only for an RFC 5626 flow, or "".
func (b Binding) RegID() string {
	for p := range strings.SplitSeq(b.Params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "reg-id") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Shared reports whether s is shared by several nodes (Redis), each of
// which holds only the bindings whose Node is its own; the bindings of a
// store that is not shared are all its one node's.
func Shared(s Store) bool {
	_, ok := s.(interface{ shared() })
	return ok
}
