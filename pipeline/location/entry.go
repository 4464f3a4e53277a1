package location

import (
	"strings"
	"time"
)

// entry is a Binding as Memory keeps it: its strings cut from one
// allocation and its times in Unix nanoseconds (0 for none). The garbage
// collector marks every object the heap holds at each cycle, and a store
// of a few hundred thousand registrations was most of what it marked:
// seven strings and a time.Location per binding became one string.
type entry struct {
	contact, params, instance, callID, received, transport string
	path                                                   []string
	cseq                                                   uint32
	expires, updated                                       int64
}

// memRecord is what Memory keeps of one AOR.
type memRecord struct {
	// entries may hold expired bindings until the next Update or Sweep.
	entries []entry
	// gone is when the AOR last lost its last binding (Unix nanoseconds),
	// or 0.
	gone int64
	// due is the second (Unix time) under which the record is filed in
	// its shard's due: when its earliest binding expires, or when its
	// tombstone ends.
	due int64
}

// pack returns b as Memory keeps it (b.AOR is the record's key).
func pack(b Binding) entry {
	n := len(b.Contact) + len(b.Params) + len(b.Instance) + len(b.CallID) + len(b.Received) + len(b.Transport)
	for _, p := range b.Path {
		n += len(p)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, s := range []string{b.Contact, b.Params, b.Instance, b.CallID, b.Received, b.Transport} {
		sb.WriteString(s)
	}
	for _, p := range b.Path {
		sb.WriteString(p)
	}
	all := sb.String()
	cut := func(s string) string {
		if s == "" {
			return ""
		}
		out := all[:len(s)]
		all = all[len(s):]
		return out
	}
	e := entry{
		contact: cut(b.Contact), params: cut(b.Params), instance: cut(b.Instance),
		callID: cut(b.CallID), received: cut(b.Received), transport: cut(b.Transport),
		cseq: b.CSeq, expires: unixNanos(b.Expires), updated: unixNanos(b.Updated),
	}
	if len(b.Path) > 0 {
		e.path = make([]string, len(b.Path))
		for i, p := range b.Path {
			e.path[i] = cut(p)
		}
	}
	return e
}

// binding returns e as a Binding of aor; the caller may keep it (its
// strings are immutable, its Path is its own).
func (e *entry) binding(aor string) Binding {
	b := Binding{
		AOR: aor, Contact: e.contact, Params: e.params, Instance: e.instance, CallID: e.callID, CSeq: e.cseq,
		Expires: fromUnixNanos(e.expires), Received: e.received, Transport: e.transport, Updated: fromUnixNanos(e.updated),
	}
	if len(e.path) > 0 {
		b.Path = append([]string(nil), e.path...)
	}
	return b
}

// unixNanos is t in Unix nanoseconds, 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNanos undoes unixNanos.
func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// live returns the bindings of r that are live at now, as Bindings of aor.
func (r *memRecord) live(aor string, now time.Time) []Binding {
	at := now.UnixNano()
	var out []Binding
	for i := range r.entries {
		if r.entries[i].expires > at {
			out = append(out, r.entries[i].binding(aor))
		}
	}
	return out
}

// countLive returns how many bindings of r are live at now.
func (r *memRecord) countLive(now time.Time) int {
	at, n := now.UnixNano(), 0
	for i := range r.entries {
		if r.entries[i].expires > at {
			n++
		}
	}
	return n
}

// view returns r as the record the rules of record.go work on: every
// binding, lapsed ones included.
func (r *memRecord) view(aor string) record {
	rec := record{gone: fromUnixNanos(r.gone)}
	for i := range r.entries {
		rec.bindings = append(rec.bindings, r.entries[i].binding(aor))
	}
	return rec
}

// set makes r hold rec.
func (r *memRecord) set(rec record) {
	r.gone = unixNanos(rec.gone)
	r.entries = r.entries[:0]
	if len(rec.bindings) == 0 {
		r.entries = nil
		return
	}
	if cap(r.entries) < len(rec.bindings) {
		r.entries = make([]entry, 0, len(rec.bindings))
	}
	for _, b := range rec.bindings {
		r.entries = append(r.entries, pack(b))
	}
}

// goneAt returns when the AOR lost its last binding: the tombstone's time,
// or, if its bindings all lapsed since the last write, the latest expiry.
func (r *memRecord) goneAt() time.Time {
	gone := r.gone
	for i := range r.entries {
		gone = max(gone, r.entries[i].expires)
	}
	return fromUnixNanos(gone)
}

// nextDue returns the second at which Sweep must look at r next: the
// earliest expiry of its bindings or, without bindings, the end of its
// tombstone, rounded up to a whole second.
func (r *memRecord) nextDue() int64 {
	if len(r.entries) == 0 {
		if r.gone == 0 {
			return 0 // nothing to keep: the next Sweep forgets it
		}
		return ceilSecond(fromUnixNanos(r.gone).Add(TombstoneTTL))
	}
	next := r.entries[0].expires
	for i := range r.entries {
		next = min(next, r.entries[i].expires)
	}
	return ceilSecond(fromUnixNanos(next))
}
