package destinations

import (
	"sort"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// State is what the admin API and the metrics show of a destination.
type State struct {
	Set        string `json:"set"`
	URI        string `json:"uri"`
	Alive      bool   `json:"alive"`
	Drained    bool   `json:"drained"`
	InProgress int64  `json:"in_progress"`
	// ResolveError is why its name did not resolve at the last try.
	ResolveError string         `json:"resolve_error,omitempty"`
	Addresses    []AddressState `json:"addresses"`
}

// AddressState is the health of one address of a destination.
type AddressState struct {
	Address   string `json:"address"`
	Transport string `json:"transport"`
	Up        bool   `json:"up"`
	// Until is when an address out for a Retry-After comes back.
	Until     time.Time `json:"until,omitzero"`
	Failures  int       `json:"failures"`
	Successes int       `json:"successes"`
	Checked   time.Time `json:"checked,omitzero"`
	LastCode  int       `json:"last_code,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// State returns the destination's state now.
func (d *Destination) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	s := State{Set: d.Set, URI: d.URI.String(), Alive: d.aliveLocked(now), Drained: d.drained, InProgress: d.inProgress.Load(), ResolveError: d.resolveErr}
	for _, h := range d.hops {
		a := AddressState{Address: h.target.Addr.String(), Transport: h.target.Transport, Up: h.up, Failures: h.fails, Successes: h.oks,
			Checked: h.checked, LastCode: h.lastCode, LastError: h.lastErr}
		if h.until.After(now) {
			a.Until = h.until
		}
		s.Addresses = append(s.Addresses, a)
	}
	return s
}

// All returns the destinations shared in pool, by set and URI.
func All(pool *pipeline.Pool) []*Destination {
	var out []*Destination
	pool.Range(func(_ string, v any) {
		if d, ok := v.(*Destination); ok {
			out = append(out, d)
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Set != out[j].Set {
			return out[i].Set < out[j].Set
		}
		return out[i].URI.String() < out[j].URI.String()
	})
	return out
}

// Key is the key under which a set's destination is shared between
// pipelines: a reload that keeps the set and the URI keeps its state.
func Key(set, uri string) string { return "destination|" + set + "|" + uri }

// Metrics returns the addresses of the destinations shared in pool, for
// the metrics. A destination with no address yet shows as one, "".
func Metrics(pool *pipeline.Pool) []metrics.Destination {
	var out []metrics.Destination
	for _, d := range All(pool) {
		s := d.State()
		m := metrics.Destination{Set: s.Set, URI: s.URI, Drained: s.Drained, InProgress: s.InProgress}
		if len(s.Addresses) == 0 {
			m.Up = s.Alive
			out = append(out, m)
		}
		for _, a := range s.Addresses {
			m.Address = a.Address
			m.Up = a.Up && a.Until.IsZero() && !s.Drained
			out = append(out, m)
		}
	}
	return out
}
