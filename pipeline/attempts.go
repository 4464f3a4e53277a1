package pipeline

import (
	"strconv"
	"strings"
	"sync"
)

// Attempts is what one call tried, for its record and the admin API's
// call view: each branch the engine sent (serial failover, forwards and
// forks alike) with its final response, and each forward a stage made.
// The engine makes one for each initial INVITE (Context.Attempts); its
// methods are safe for concurrent use, and do nothing on a nil Attempts.
type Attempts struct {
	mu       sync.Mutex
	tries    []Attempt
	forwards []Diversion
}

// Attempt is one branch: where it went and how it ended.
type Attempt struct {
	// URI is the branch's Request-URI; Hop the address it was sent to.
	URI string `json:"uri"`
	Hop string `json:"hop,omitempty"`
	// Code is its final response; 0 for none (no answer, a transport
	// error, or still pending).
	Code int `json:"code,omitempty"`
}

// Diversion is one forward of the call: of what kind (busy, no_answer,
// unavailable, unconditional, redirect), from which user, to where.
type Diversion struct {
	Kind string `json:"kind"`
	From string `json:"from,omitempty"`
	To   string `json:"to"`
}

// Sent notes a branch sent to uri at hop, and returns its index for Ended.
func (a *Attempts) Sent(uri, hop string) int {
	if a == nil {
		return -1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tries = append(a.tries, Attempt{URI: uri, Hop: hop})
	return len(a.tries) - 1
}

// Ended notes the final response of the branch Sent returned i for.
func (a *Attempts) Ended(i, code int) {
	if a == nil || i < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if i < len(a.tries) && a.tries[i].Code == 0 {
		a.tries[i].Code = code
	}
}

// Forward notes a forward of the call.
func (a *Attempts) Forward(kind, from, to string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forwards = append(a.forwards, Diversion{Kind: kind, From: from, To: to})
}

// Copy returns copies of the branches and forwards so far.
func (a *Attempts) Copy() ([]Attempt, []Diversion) {
	if a == nil {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Attempt(nil), a.tries...), append([]Diversion(nil), a.forwards...)
}

// ForwardedFrom is the user the call was first forwarded from, "" for a
// call never forwarded.
func (a *Attempts) ForwardedFrom() string {
	if a == nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.forwards {
		if f.From != "" {
			return f.From
		}
	}
	return ""
}

// String lists the branches as "CODE URI" (0 for none), separated by
// " | ", for a CSV column.
func (a *Attempts) String() string {
	tries, _ := a.Copy()
	parts := make([]string, len(tries))
	for i, t := range tries {
		parts[i] = strconv.Itoa(t.Code) + " " + t.URI
	}
	return strings.Join(parts, " | ")
}
