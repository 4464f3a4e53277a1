package callforward

import (
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	loc "github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/stages/location"
)

// router works out where one call goes: the called user's devices, and
// the forwards and redirects that follow them.
type router struct {
	c     *CallForward
	ctx   *pipeline.Context
	store loc.Forwards
	// req is the request the targets are made from: ctx.Request while
	// the stage runs, the engine's copy (Outcome.Request) after, since
	// ctx.Request went out as a branch. domain is the called domain.
	req    *sip.Request
	domain string
}

// at returns r making targets from req (nil: r's).
func (r *router) at(req *sip.Request) *router {
	if req == nil {
		return r
	}
	at := *r
	at.req = req
	return &at
}

// chain is the path of a call through forwards and redirects so far.
type chain struct {
	// visited are the users the call has rung (or skipped) already.
	visited map[string]bool
	// forwards and redirects count what the call took.
	forwards, redirects int
}

// with returns ch with aor visited, and one more forward.
func (ch chain) with(aor string) chain {
	v := make(map[string]bool, len(ch.visited)+1)
	for k := range ch.visited {
		v[k] = true
	}
	if aor != "" {
		v[aor] = true
	}
	return chain{visited: v, forwards: ch.forwards + 1, redirects: ch.redirects}
}

// user returns the targets a call to aor rings first, and what follows
// them: devices are the user's devices in groups by q-value (none: no
// binding), fwd the user's forwarding. loop reports a forward that would
// go back to a user the call already went through, or past the chain
// limit, when that is all the call could do.
func (r *router) user(aor string, devices [][]pipeline.Target, fwd loc.Forwarding, ch chain) (targets []pipeline.Target, next *pipeline.Next, loop bool) {
	if fwd.Unconditional != "" {
		return r.forward(aor, "unconditional", fwd.Unconditional, ch)
	}
	if len(devices) == 0 {
		if fwd.Unavailable != "" {
			return r.forward(aor, "unavailable", fwd.Unavailable, ch)
		}
		return nil, nil, false
	}
	return devices[0], r.after(aor, devices[1:], fwd, ch), false
}

// after is what follows a round of aor's devices: the next group by
// q-value, then the forward that the way the call ended asks for.
func (r *router) after(aor string, groups [][]pipeline.Target, fwd loc.Forwarding, ch chain) *pipeline.Next {
	if len(groups) == 0 && fwd.IsZero() && r.c.FollowRedirects == 0 {
		return nil
	}
	next := &pipeline.Next{}
	if fwd.NoAnswer != "" {
		next.NoAnswer = r.noAnswerAfter(fwd)
	}
	next.Then = func(out pipeline.Outcome) ([]pipeline.Target, *pipeline.Next) {
		r := r.at(out.Request)
		code := 0
		if out.Best != nil {
			code = out.Best.StatusCode
		}
		switch {
		case code >= 300 && code < 400:
			return r.redirect(out.Best, ch)
		case code >= 600 && !(r.c.BusyOn6xx && (code == 600 || code == 603) && fwd.Busy != ""):
			return nil, nil // RFC 3261 16.7: no new branch after a 6xx
		case len(groups) > 0 && code < 600:
			r.ctx.Log.Info("serial forking: ringing the next q-value", "aor", aor, "code", code, "next", describe(groups[0]))
			return groups[0], r.after(aor, groups[1:], fwd, ch)
		case out.NoAnswer && fwd.NoAnswer != "":
			return r.then("no_answer", aor, fwd.NoAnswer, ch)
		case (code == 486 || code >= 600) && fwd.Busy != "":
			return r.then("busy", aor, fwd.Busy, ch)
		case out.Only(480, 408) && fwd.Unavailable != "":
			return r.then("unavailable", aor, fwd.Unavailable, ch)
		}
		return nil, nil
	}
	return next
}

// then is forward for a Next: a loop ends the call with the answer that
// asked for the forward.
func (r *router) then(kind, from, to string, ch chain) ([]pipeline.Target, *pipeline.Next) {
	targets, next, _ := r.forward(from, kind, to, ch)
	return targets, next
}

// noAnswerAfter is how long a user's call rings before its no-answer
// forward: the user's time, capped, or the stage's.
func (r *router) noAnswerAfter(fwd loc.Forwarding) time.Duration {
	d := r.c.NoAnswerAfter.D()
	if fwd.NoAnswerAfter > 0 {
		d = time.Duration(fwd.NoAnswerAfter) * time.Second
	}
	if m := r.c.MaxNoAnswerAfter.D(); m > 0 && d > m {
		d = m
	}
	return d
}

// forward sends the call of from on to the target to: a user (whose own
// devices and forwarding then apply), a SIP URI, or a destination set.
func (r *router) forward(from, kind, to string, ch chain) ([]pipeline.Target, *pipeline.Next, bool) {
	log := r.ctx.Log.With("aor", from, "kind", kind, "to", to)
	if ch.forwards >= r.c.ChainLimit {
		log.Warn("call not forwarded: chain limit reached", "limit", r.c.ChainLimit)
		return nil, nil, true
	}
	switch {
	case strings.HasPrefix(to, "set:"):
		targets := r.set(strings.TrimPrefix(to, "set:"))
		if len(targets) == 0 {
			log.Warn("call not forwarded: the set has no live destination, or is unknown")
			return nil, nil, false
		}
		r.forwarded(log, kind, from, to)
		return targets, nil, false
	case strings.HasPrefix(to, "sip:") || strings.HasPrefix(to, "sips:"):
		var u sip.Uri
		if err := sip.ParseUri(to, &u); err != nil {
			log.Warn("call not forwarded: the target does not parse", "error", err)
			return nil, nil, false
		}
		r.forwarded(log, kind, from, to)
		return []pipeline.Target{{URI: u}}, r.after("", nil, loc.Forwarding{}, ch.with("")), false
	}
	aor, ok := r.aorOf(to)
	if !ok {
		log.Warn("call not forwarded: the target names no user")
		return nil, nil, false
	}
	if ch.visited[aor] {
		log.Warn("call not forwarded: the user is already in the call's forwarding chain")
		return nil, nil, true
	}
	bindings, _, err := r.ctx.Services().Location.Lookup(aor, time.Now())
	if err != nil {
		log.Warn("call not forwarded: lookup failed", "error", err)
		return nil, nil, false
	}
	fwd, err := r.store.Forwarding(aor)
	if err != nil {
		log.Warn("forwarding of the target not read", "error", err)
	}
	r.forwarded(log.With("bindings", len(bindings)), kind, from, to)
	return r.user(aor, r.groups(bindings), fwd, ch.with(aor))
}

// forwarded logs a forward, and notes it in the call's attempts for its
// record.
func (r *router) forwarded(log *slog.Logger, kind, from, to string) {
	log.Info("call forwarded")
	r.ctx.Attempts.Forward(kind, from, to)
}

// aorOf is the AOR key of a user target: "bob" is bob in the called
// domain, "bob@example.org" names the domain.
func (r *router) aorOf(user string) (string, bool) {
	host := r.domain
	if u, h, ok := strings.Cut(user, "@"); ok {
		user, host = u, h
	}
	if user == "" || host == "" {
		return "", false
	}
	return r.ctx.AOR(&sip.Uri{Scheme: "sip", User: user, Host: host}), true
}

// set returns the targets of the destination set called name, as the
// dispatch stage picks them: the first destination, failing over to the
// next ones.
func (r *router) set(name string) []pipeline.Target {
	if r.c.sets == nil {
		return nil
	}
	sctx := pipeline.NewContext(r.ctx.Pipeline(), r.req, r.ctx.Source, r.ctx.Transport)
	sctx.Log = r.ctx.Log
	sctx.Route.Set = name
	if v, err := r.c.sets.ServeRequest(sctx); err != nil || v != pipeline.Continue {
		return nil
	}
	return sctx.Targets
}

// redirect follows a 3xx to its Contacts, while the stage allows.
func (r *router) redirect(res *sip.Response, ch chain) ([]pipeline.Target, *pipeline.Next) {
	if ch.redirects >= r.c.FollowRedirects {
		return nil, nil // relayed
	}
	var targets []pipeline.Target
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.Wildcard {
			continue
		}
		targets = append(targets, pipeline.Target{URI: *c.Address.Clone()})
	}
	if len(targets) == 0 {
		return nil, nil
	}
	r.ctx.Log.Info("redirect followed", "code", res.StatusCode, "to", describe(targets))
	r.ctx.Attempts.Forward("redirect", "", describe(targets))
	next := ch.with("")
	next.forwards, next.redirects = ch.forwards, ch.redirects+1
	return targets, r.after("", nil, loc.Forwarding{}, next)
}

// groups turns a user's bindings into targets: one group, or with serial
// on, groups by q-value, the highest first (a binding without q has 1.0).
func (r *router) groups(bindings []loc.Binding) [][]pipeline.Target {
	if len(bindings) == 0 {
		return nil
	}
	if !r.c.Serial {
		if ts := location.Targets(r.ctx, bindings); len(ts) > 0 {
			return [][]pipeline.Target{ts}
		}
		return nil
	}
	byQ := map[int][]loc.Binding{}
	var qs []int
	for _, b := range bindings {
		q := qOf(b)
		if _, ok := byQ[q]; !ok {
			qs = append(qs, q)
		}
		byQ[q] = append(byQ[q], b)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(qs)))
	var out [][]pipeline.Target
	for _, q := range qs {
		if ts := location.Targets(r.ctx, byQ[q]); len(ts) > 0 {
			out = append(out, ts)
		}
	}
	return out
}

// qOf is a binding's q-value in thousandths (RFC 3261 20.10): 1000
// without one, or when it does not parse.
func qOf(b loc.Binding) int {
	for p := range strings.SplitSeq(b.Params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return 1000
		}
		return int(f*1000 + 0.5)
	}
	return 1000
}

// describe lists the Request-URIs of targets, for the log.
func describe(targets []pipeline.Target) string {
	uris := make([]string, len(targets))
	for i, t := range targets {
		uris[i] = t.URI.String()
	}
	return strings.Join(uris, ",")
}
