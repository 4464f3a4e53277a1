package pipeline

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// TraceUsers are the users traced live (`switchboard ctl trace USER on`)
// whatever [log] says: both traces, the stages' decisions and the whole
// messages, for every message from, to or addressed to one of them. They
// live in Services, so they outlast reloads until the process stops.
type TraceUsers struct {
	mu sync.Mutex
	// users is read without the lock on each message: nil while no one is
	// traced, so that the trace costs a pointer load.
	users atomic.Pointer[[]string]
}

// Set turns the trace of user on or off. A user is a name ("alice") or a
// name and a host ("alice@example.org"), matched without case.
func (t *TraceUsers) Set(user string, on bool) {
	user = strings.ToLower(user)
	t.mu.Lock()
	defer t.mu.Unlock()
	var next []string
	if cur := t.users.Load(); cur != nil {
		next = slices.DeleteFunc(slices.Clone(*cur), func(u string) bool { return u == user })
	}
	if on {
		next = append(next, user)
		slices.Sort(next)
	}
	if len(next) == 0 {
		t.users.Store(nil)
		return
	}
	t.users.Store(&next)
}

// List returns the users traced, sorted.
func (t *TraceUsers) List() []string {
	if t == nil {
		return nil
	}
	if cur := t.users.Load(); cur != nil {
		return slices.Clone(*cur)
	}
	return nil
}

// Match reports whether the message whose environment env returns is
// from, to or addressed to a traced user; env is called only while some
// user is traced.
func (t *TraceUsers) Match(env func() *Env) bool {
	if t == nil {
		return false
	}
	cur := t.users.Load()
	if cur == nil {
		return false
	}
	e := env()
	if e == nil {
		return false
	}
	for _, u := range *cur {
		if partyIs(u, e.From.User, e.From.Host) || partyIs(u, e.To.User, e.To.Host) ||
			partyIs(u, e.Request.URI.User, e.Request.URI.Host) {
			return true
		}
	}
	return false
}

// partyIs reports whether user ("alice" or "alice@host") names the party
// with that user and host.
func partyIs(user, name, host string) bool {
	if name == "" {
		return false
	}
	if u, h, ok := strings.Cut(user, "@"); ok {
		return strings.EqualFold(u, name) && strings.EqualFold(h, host)
	}
	return strings.EqualFold(user, name)
}
