package location

import (
	"slices"
	"sync"
	"time"
)

// This file holds the rules of Update and Sweep that the persistent stores
// share with Memory, so that every Store answers alike.

// record is an AOR's bindings and tombstone as the rules of this file,
// which every store shares, work on them.
type record struct {
	// bindings may hold expired bindings until the next Update or Sweep.
	bindings []Binding
	// gone is when the AOR last lost its last binding, or zero.
	gone time.Time
}

// storable returns what Update keeps of next at now: copies of the
// bindings that have not expired, each with its AOR set to aor.
func storable(aor string, now time.Time, next []Binding) []Binding {
	stored := make([]Binding, 0, len(next))
	for _, b := range next {
		if !b.Expires.After(now) {
			continue
		}
		b.AOR = aor
		stored = append(stored, cloneBinding(b))
	}
	return stored
}

// lostAt returns the tombstone time of an AOR that Update leaves without
// bindings: now if it had live bindings until then, else when its last
// binding lapsed (goneAt).
func lostAt(goneAt time.Time, current []Binding, now time.Time) time.Time {
	if len(current) > 0 {
		return now
	}
	return goneAt
}

// replace makes r hold stored, what Update keeps, or when that is
// nothing, the tombstone of the bindings current (those live at now). It
// returns what it adds to the count of AORs with bindings: 1, -1 or 0.
func (r *record) replace(stored, current []Binding, now time.Time) (held int) {
	if len(stored) == 0 {
		if len(r.bindings) > 0 {
			held = -1
		}
		r.bindings, r.gone = nil, lostAt(r.goneAt(), current, now)
		return held
	}
	if len(r.bindings) == 0 {
		held = 1
	}
	r.bindings = stored
	return held
}

// sweep removes the bindings of r that expired by now, as Memory.Sweep
// does, and returns how many, and whether r is to be forgotten: it has no
// binding left and lost its last one TombstoneTTL or more before now.
func (r *record) sweep(now time.Time) (removed int, forget bool) {
	if len(r.bindings) > 0 {
		gone := r.goneAt()
		kept := r.bindings[:0] // no store hands out its record's slice
		for _, b := range r.bindings {
			if b.Expires.After(now) {
				kept = append(kept, b)
			}
		}
		removed = len(r.bindings) - len(kept)
		clear(r.bindings[len(kept):])
		if len(kept) == 0 {
			r.bindings, r.gone = nil, gone
		} else {
			r.bindings = kept
		}
	}
	return removed, len(r.bindings) == 0 && now.Sub(r.gone) >= TombstoneTTL
}

// due returns the second at which Sweep must look at r next: the earliest
// expiry of its bindings or, without bindings, the end of its tombstone,
// rounded up to a whole second; 0 for a record with neither, which the
// next Sweep forgets.
func (r *record) due() int64 {
	if len(r.bindings) == 0 {
		if r.gone.IsZero() {
			return 0
		}
		return ceilSecond(r.gone.Add(TombstoneTTL))
	}
	first := r.bindings[0].Expires
	for _, b := range r.bindings[1:] {
		if b.Expires.Before(first) {
			first = b.Expires
		}
	}
	return ceilSecond(first)
}

// known reports whether an AOR without live bindings at now is still
// known: it lost its last binding at goneAt, less than TombstoneTTL ago.
func known(goneAt, now time.Time) bool {
	return !goneAt.IsZero() && now.Sub(goneAt) < TombstoneTTL
}

// sweepGate spaces out the sweeps of a store whose Sweep reads every AOR:
// the engine calls Sweep every second, and expired bindings need no hurry,
// as Lookup and Count never return them.
type sweepGate struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
}

// enter reports whether a sweep at now may run: none is running, and the
// last one ran at least every before now (or after now: the clock went
// back). A sweep that entered calls leave when done.
func (g *sweepGate) enter(now time.Time) bool {
	if !g.mu.TryLock() {
		return false
	}
	if !g.last.IsZero() && !now.Before(g.last) && now.Sub(g.last) < g.every {
		g.mu.Unlock()
		return false
	}
	g.last = now
	return true
}

func (g *sweepGate) leave() { g.mu.Unlock() }

// goneAt returns when the AOR lost its last binding: the tombstone's time,
// or, if its bindings all lapsed since the last write, the latest expiry.
func (r *record) goneAt() time.Time {
	gone := r.gone
	for _, b := range r.bindings {
		if b.Expires.After(gone) {
			gone = b.Expires
		}
	}
	return gone
}

// liveCopies returns copies of the bindings that are live at now.
func liveCopies(bs []Binding, now time.Time) []Binding {
	var out []Binding
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, cloneBinding(b))
		}
	}
	return out
}

// cloneBinding copies b so that the caller and the store share nothing.
func cloneBinding(b Binding) Binding {
	b.Path = slices.Clone(b.Path)
	return b
}
