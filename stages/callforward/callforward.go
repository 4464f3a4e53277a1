// Package callforward is the `callforward` stage: the location lookup of
// the called user, with the user's call forwarding (unconditional, on
// busy, on no answer, when unavailable), serial forking by q-value among
// the user's devices, and, when asked, the following of redirects.
package callforward

import (
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	loc "github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/stages/dispatch"
	"github.com/switchboard-sip/switchboard/stages/location"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "callforward",
		Description: "location lookup with the called user's call forwarding, serial forking by q-value and redirects followed",
		New: func() pipeline.Stage {
			return &CallForward{NoAnswerAfter: config.Duration(DefaultNoAnswer), ChainLimit: DefaultChainLimit}
		},
	})
}

// Defaults of the stage's limits.
const (
	DefaultNoAnswer   = 20 * time.Second
	DefaultChainLimit = 5
)

// CallForward is the callforward stage. It does what the location stage
// does, and for an INVITE to one of our users it adds what the user's
// forwarding (kept in the location store) and the stage's keys ask for.
type CallForward struct {
	// HideUnknown is the location stage's key of that name.
	HideUnknown string `toml:"hide_unknown"`
	// NoAnswerAfter is how long a call rings before it is forwarded on
	// no answer, for users whose forwarding names no time.
	NoAnswerAfter config.Duration `toml:"no_answer_after"`
	// MaxNoAnswerAfter caps the time a user may set (0: no cap).
	MaxNoAnswerAfter config.Duration `toml:"max_no_answer_after"`
	// ChainLimit is how many forwards one call may take (A to B to C is
	// two).
	ChainLimit int `toml:"chain_limit"`
	// BusyOn6xx makes 600 Busy Everywhere and 603 Decline count as busy:
	// RFC 3261 16.7 forbids new branches after a 6xx, so it is off.
	BusyOn6xx bool `toml:"busy_on_6xx"`
	// Serial rings a user's devices by q-value, the highest first;
	// devices of equal q ring together (RFC 3261 16.6).
	Serial bool `toml:"serial"`
	// FollowRedirects, above 0, follows a 3xx from downstream (to its
	// Contacts) up to that many times in a call; 0 relays it.
	FollowRedirects int `toml:"follow_redirects"`

	loc location.Location
	// sets sends to destination sets ("set:NAME" targets); nil when the
	// config declares none.
	sets *dispatch.Dispatch
}

var (
	_ pipeline.RequestStage = (*CallForward)(nil)
	_ pipeline.Provisioner  = (*CallForward)(nil)
	_ pipeline.Validator    = (*CallForward)(nil)
	_ pipeline.ReadOnly     = (*CallForward)(nil)
)

// Validate checks the limits.
func (c *CallForward) Validate() error {
	switch {
	case c.NoAnswerAfter.D() <= 0:
		return fmt.Errorf("no_answer_after: %s is not positive", c.NoAnswerAfter.D())
	case c.MaxNoAnswerAfter.D() < 0:
		return fmt.Errorf("max_no_answer_after: %s is negative", c.MaxNoAnswerAfter.D())
	case c.ChainLimit < 0:
		return fmt.Errorf("chain_limit: %d is negative", c.ChainLimit)
	case c.FollowRedirects < 0:
		return fmt.Errorf("follow_redirects: %d is negative", c.FollowRedirects)
	}
	return nil
}

// Provision sets up the lookup and the destination sets.
func (c *CallForward) Provision(b *pipeline.BuildContext) error {
	c.loc = location.Location{HideUnknown: c.HideUnknown}
	if err := c.loc.Provision(b); err != nil {
		return err
	}
	c.sets = nil
	if len(b.Pipeline.Config.Sets) > 0 {
		c.sets = &dispatch.Dispatch{}
		if err := c.sets.Provision(b); err != nil {
			return err
		}
	}
	return nil
}

// ServeRequest looks the called user up as the location stage does; for
// an INVITE to one of our users, it then applies the user's forwarding.
func (c *CallForward) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	v, err := c.loc.ServeRequest(ctx)
	if err != nil || !c.applies(ctx, v) {
		return v, err
	}
	store, _ := ctx.Services().Location.(loc.Forwards)
	if store == nil {
		return v, nil
	}
	req := ctx.Request
	aor := ctx.AOR(&req.Recipient)
	fwd, err := store.Forwarding(aor)
	if err != nil {
		ctx.Log.Warn("call forwarding not read: ringing the user", "aor", aor, "error", err)
		return v, nil
	}
	if fwd.IsZero() && !c.Serial && c.FollowRedirects == 0 {
		return v, nil
	}
	r := &router{c: c, ctx: ctx, store: store, req: req, domain: req.Recipient.Host}
	ch := chain{visited: map[string]bool{aor: true}}
	var devices [][]pipeline.Target
	if v == pipeline.Continue {
		bindings, _, err := ctx.Services().Location.Lookup(aor, ctx.Received)
		if err != nil {
			return v, fmt.Errorf("lookup %s: %w", aor, err)
		}
		devices = r.groups(bindings)
	}
	targets, next, loop := r.user(aor, devices, fwd, ch)
	switch {
	case loop:
		ctx.Reply(482, "Loop Detected")
		return pipeline.Replied, nil
	case len(targets) == 0:
		return v, nil // the location stage's answer stands
	}
	ctx.SetReply(nil)
	ctx.Targets, ctx.Next = targets, next
	return pipeline.Continue, nil
}

// applies reports whether the stage forwards the request: an initial
// INVITE for one of our users, which the lookup sent to the user's
// devices or answered 480 or 404 for lack of them.
func (c *CallForward) applies(ctx *pipeline.Context, v pipeline.Verdict) bool {
	req := ctx.Request
	if req.Method != sip.INVITE || !ctx.IsOurs(&req.Recipient) || req.Recipient.User == "" {
		return false
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		return false
	}
	switch v {
	case pipeline.Continue:
		return len(ctx.Targets) > 0
	case pipeline.Replied:
		code := ctx.Response().StatusCode
		return code == 480 || code == 404
	}
	return false
}

// ReadOnly reports that the stage changes nothing a rule reads: it sets
// the targets, or answers.
func (*CallForward) ReadOnly() bool { return true }
