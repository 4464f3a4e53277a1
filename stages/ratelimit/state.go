package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// StateKey is the key of the stage's State in pipeline.Services.Shared.
const StateKey = "ratelimit/state"

// State is what the ratelimit stage keeps across reloads: the sources it
// counts, the sources it banned, and its counters. Every ratelimit stage of
// every pipeline shares one State; the settings (rate, window, ban, ...)
// are the current stage's.
//
// The bans have a table of their own, so that no flood of sources that are
// not banned can make room in it: only a newer ban takes the place of the
// oldest one when it is full.
type State struct {
	// Stats count what the stage did.
	Stats Stats

	sources *table[source]
	// bans holds when each ban ends (Unix nanoseconds), ended bans too
	// until newer ones need their place: the end of a source's last ban
	// tells which of its authentication failures were paid for.
	bans *table[int64]
	now  func() time.Time
}

// Stats count what the ratelimit stages did since a pipeline first had
// one: they outlive the reloads that keep a ratelimit stage. Switchboard
// does not export them as Prometheus metrics yet (see README.md, Metrics).
type Stats struct {
	// Dropped counts packets dropped unparsed from banned sources.
	Dropped atomic.Int64
	// Replied counts requests from banned sources answered with 503.
	Replied atomic.Int64
	// Bans counts sources banned for their rate.
	Bans atomic.Int64
	// AuthBans counts sources banned for their authentication failures.
	AuthBans atomic.Int64
	// Lifted counts bans forgotten before their end to make room for
	// newer bans.
	Lifted atomic.Int64
}

// source is what the stage counts of one source address: its packets in
// the current window, which started at windowStart (Unix nanoseconds).
type source struct {
	windowStart int64
	count       int64
}

// newState returns a State that keeps at most maxSources sources and as
// many bans, with a clock.
func newState(maxSources int, now func() time.Time) *State {
	return &State{sources: newTable[source](maxSources), bans: newTable[int64](maxSources), now: now}
}

// resize makes room for maxSources sources and as many bans.
func (st *State) resize(maxSources int) {
	st.sources.resize(maxSources)
	st.bans.resize(maxSources)
}

// ban bans ip from now until the given end, unless it is banned already,
// and reports whether it banned it. When the ban table is full, the oldest
// ban of its shard gives way.
func (st *State) ban(ip netip.Addr, now, until int64) bool {
	fresh := false
	forgot, evicted := st.bans.update(ip, now, func(end *int64) {
		if now < *end {
			return
		}
		*end, fresh = until, true
	})
	if evicted && now < forgot {
		st.Stats.Lifted.Add(1)
	}
	return fresh
}

// banEnd returns when the last ban of ip ends, or ended; 0 for none it
// remembers.
func (st *State) banEnd(ip netip.Addr) int64 {
	var end int64
	st.bans.peek(ip, func(e *int64) { end = *e })
	return end
}

// Sources returns how many sources the state keeps.
func (st *State) Sources() int { return st.sources.Len() }

// Evicted returns how many sources were forgotten to make room for others.
// A banned source stays banned when it is forgotten: its ban is kept
// apart.
func (st *State) Evicted() int64 { return st.sources.evicted.Load() }

// BannedFor returns how long ip stays banned after now; 0 when it is not
// banned.
func (st *State) BannedFor(ip netip.Addr, now time.Time) time.Duration {
	return time.Duration(max(st.banEnd(ip.Unmap())-now.UnixNano(), 0))
}
