package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// StateKey is the key of the stage's State in pipeline.Services.
const StateKey = "ratelimit/state"

// State is what the ratelimit stage keeps across reloads: the sources it
// counts and bans, and its counters. Every ratelimit stage of every
// pipeline shares one State; the settings (rate, window, ban, ...) are the
// current stage's.
type State struct {
	// Stats count what the stage did.
	Stats Stats

	sources *table[source]
	now     func() time.Time
}

// Stats count what every ratelimit stage did since the process started.
// They are the stage's metrics until Switchboard exposes Prometheus
// metrics (see README.md, Metrics).
type Stats struct {
	// Dropped counts packets dropped unparsed from banned sources.
	Dropped atomic.Int64
	// Replied counts requests from banned sources answered with 503.
	Replied atomic.Int64
	// Bans counts sources banned for their rate.
	Bans atomic.Int64
	// AuthBans counts sources banned for their authentication failures.
	AuthBans atomic.Int64
}

// source is what the stage knows of one source address: its count in the
// current window, and the end of its ban. Times are Unix nanoseconds.
type source struct {
	windowStart int64
	count       int64
	bannedUntil int64
}

// newState returns a State that keeps at most maxSources sources, with a
// clock.
func newState(maxSources int, now func() time.Time) *State {
	return &State{sources: newTable[source](maxSources), now: now}
}

// Sources returns how many sources the state keeps.
func (st *State) Sources() int { return st.sources.Len() }

// Evicted returns how many sources were forgotten to make room for others.
func (st *State) Evicted() int64 { return st.sources.evicted.Load() }

// BannedFor returns how long ip stays banned after now; 0 when it is not
// banned.
func (st *State) BannedFor(ip netip.Addr, now time.Time) time.Duration {
	at := now.UnixNano()
	var left int64
	st.sources.peek(ip.Unmap(), func(s *source) {
		if at < s.bannedUntil {
			left = s.bannedUntil - at
		}
	})
	return time.Duration(left)
}
