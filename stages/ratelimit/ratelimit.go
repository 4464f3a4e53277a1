// Package ratelimit is the ratelimit stage, in the spirit of Kamailio's
// pike module: it counts the packets each source address sends, before
// they are parsed, and bans a source that sends more than a rate, or that
// fails authentication too often. A banned source's packets are dropped
// unparsed, or its requests answered with 503.
//
// The authentication failures come from the Failures service, defined
// here and shared under FailuresKey: the auth stage records into it, this
// stage reads it. The dependency goes from auth to ratelimit, the stage
// that acts on the records and owns the bounded per-source table they live
// in; any later stage that sees abuse can record it the same way.
package ratelimit

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "ratelimit",
		Description: "bans source addresses that send too many packets or fail authentication too often; drops their packets unparsed or answers 503",
		New:         func() pipeline.Stage { return New() },
	})
}

// Defaults of the stage's keys.
const (
	DefaultRate       = 50
	DefaultWindow     = 2 * time.Second
	DefaultBan        = 60 * time.Second
	DefaultAction     = ActionDrop
	DefaultMaxSources = 100000
)

// Actions on a banned source.
const (
	// ActionDrop drops its packets before they are parsed.
	ActionDrop = "drop"
	// ActionReply answers its requests with 503 and Retry-After.
	ActionReply = "reply"
)

// Ratelimit is the ratelimit stage.
type Ratelimit struct {
	// Rate is how many packets a source may send in one window.
	Rate int `toml:"rate"`
	// Window is the length of the counting window; it starts at a
	// source's first packet.
	Window config.Duration `toml:"window"`
	// Ban is how long a source that went over the rate stays banned.
	Ban config.Duration `toml:"ban"`
	// Action is what happens to a banned source: "drop" or "reply".
	Action string `toml:"action"`
	// Allow are networks (CIDRs or addresses) never limited.
	Allow []string `toml:"allow"`
	// MaxSources is how many sources the stage counts, and how many bans
	// it keeps. Past it the source seen least recently is forgotten, and
	// only a newer ban takes the place of the oldest one.
	MaxSources int `toml:"max_sources"`
	// AuthFailures bans a source after this many authentication failures
	// within one window; 0 turns it off.
	AuthFailures int `toml:"auth_failures"`

	allow    []netip.Prefix
	state    *State
	failures *Failures
}

var (
	_ pipeline.PacketStage  = (*Ratelimit)(nil)
	_ pipeline.RequestStage = (*Ratelimit)(nil)
	_ pipeline.ReadOnly     = (*Ratelimit)(nil)
	_ pipeline.Provisioner  = (*Ratelimit)(nil)
	_ pipeline.Validator    = (*Ratelimit)(nil)
)

// New returns a ratelimit stage with the default settings.
func New() *Ratelimit {
	return &Ratelimit{
		Rate:       DefaultRate,
		Window:     config.Duration(DefaultWindow),
		Ban:        config.Duration(DefaultBan),
		Action:     DefaultAction,
		MaxSources: DefaultMaxSources,
	}
}

// Validate checks the settings, each mistake naming its key.
func (r *Ratelimit) Validate() error {
	var errs []error
	if r.Rate < 1 {
		errs = append(errs, fmt.Errorf("rate: %d is not a positive number of packets", r.Rate))
	}
	if r.Window.D() <= 0 {
		errs = append(errs, errors.New(`window: must be longer than 0, such as "2s"`))
	}
	if r.Ban.D() < time.Second {
		errs = append(errs, fmt.Errorf("ban: %q is shorter than 1s", r.Ban))
	}
	if r.Action != ActionDrop && r.Action != ActionReply {
		errs = append(errs, fmt.Errorf("action: %q is not %q or %q", r.Action, ActionDrop, ActionReply))
	}
	for _, a := range r.Allow {
		if _, err := config.ParseNetwork(a); err != nil {
			errs = append(errs, fmt.Errorf("allow: %w", err))
		}
	}
	if r.MaxSources < 1 {
		errs = append(errs, fmt.Errorf("max_sources: %d is not a positive number", r.MaxSources))
	}
	if r.AuthFailures < 0 || r.AuthFailures > FailuresDepth {
		errs = append(errs, fmt.Errorf("auth_failures: %d is not between 0 (off) and %d", r.AuthFailures, FailuresDepth))
	}
	return errors.Join(errs...)
}

// Provision parses the allow-list, and shares the State and Failures of
// the pipelines before it.
func (r *Ratelimit) Provision(b *pipeline.BuildContext) error {
	r.allow = r.allow[:0]
	for _, a := range r.Allow {
		p, _ := config.ParseNetwork(a)
		r.allow = append(r.allow, p)
	}
	var err error
	r.state, err = pipeline.Share(b, StateKey, func() (*State, error) { return newState(r.MaxSources, b.Services.Now), nil })
	if err != nil {
		return err
	}
	r.failures, err = SharedFailures(b)
	return err
}

// AllowPacket counts a packet from src and says whether it may be parsed:
// false for a banned source when the action is "drop". The engine calls it
// for every datagram and every TCP read, before sipgo parses them.
func (r *Ratelimit) AllowPacket(src netip.AddrPort, transport string) bool {
	ip := src.Addr().Unmap()
	if !ip.IsValid() || r.allowed(ip) {
		return true // no address to count it against, or allowed
	}
	// A reload that changed max_sources resizes the table on the first
	// packet the new pipeline sees, not in Provision: a build that fails
	// changes nothing.
	r.state.resize(r.MaxSources)
	if !r.count(ip, r.state.now().UnixNano()) {
		return true
	}
	if r.Action == ActionReply {
		return true // ServeRequest answers 503
	}
	r.state.Stats.Dropped.Add(1)
	return false
}

// count counts a packet from ip at now and reports whether ip is banned.
// A banned source's packets are not counted.
func (r *Ratelimit) count(ip netip.Addr, now int64) bool {
	lastBan := r.state.banEnd(ip)
	if now < lastBan {
		return true
	}
	window := int64(r.Window)
	over := false
	r.state.sources.update(ip, now, func(s *source) {
		if now-s.windowStart >= window || now < s.windowStart {
			s.windowStart, s.count = now, 0
		}
		s.count++
		over = s.count > int64(r.Rate)
	})
	if over {
		if r.state.ban(ip, now, now+int64(r.Ban)) {
			r.state.Stats.Bans.Add(1)
		}
		return true
	}
	if r.AuthFailures == 0 {
		return false
	}
	// Failures from before the end of the last ban were paid for.
	if lastBan > 0 && now-lastBan < window {
		window = now - lastBan
	}
	if r.failures.Count(ip, time.Unix(0, now), time.Duration(window)) < r.AuthFailures {
		return false
	}
	if r.state.ban(ip, now, now+int64(r.Ban)) {
		r.state.Stats.AuthBans.Add(1)
	}
	return true
}

// ServeRequest answers a request from a banned source: 503 with
// Retry-After when the action is "reply", else it drops it. The counting
// is AllowPacket's: a request from a source that is not banned goes on.
func (r *Ratelimit) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	ip := ctx.Source.IP.Unmap()
	if r.allowed(ip) {
		return pipeline.Continue, nil
	}
	left := r.state.BannedFor(ip, ctx.Received)
	if left <= 0 {
		return pipeline.Continue, nil
	}
	if r.Action != ActionReply || ctx.Request.IsAck() {
		r.state.Stats.Dropped.Add(1)
		return pipeline.Dropped, nil
	}
	res := ctx.Reply(503, "Service Unavailable")
	seconds := (left + time.Second - 1) / time.Second
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(int(seconds))))
	r.state.Stats.Replied.Add(1)
	return pipeline.Replied, nil
}

// allowed reports whether ip is in the allow-list.
func (r *Ratelimit) allowed(ip netip.Addr) bool {
	for _, p := range r.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*Ratelimit) ReadOnly() bool { return true }
