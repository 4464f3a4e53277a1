// Package dispatch is the `dispatch` stage: it sends a request to a
// destination set declared with [[set]] in config.toml (gateways, trunks,
// PBXs), picking the destination by the set's algorithm and failing over
// to the next ones inside the same transaction.
package dispatch

import (
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/destinations"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "dispatch",
		Description: "sends the request to a destination set ([[set]]): picks a live destination, fails over to the next",
		New:         func() pipeline.Stage { return &Dispatch{} },
	})
}

// Dispatch is the dispatch stage.
type Dispatch struct {
	// Set names the [[set]] the request goes to. Empty, the request goes
	// to the set an earlier stage chose (the prefixes stage's ctx.Route),
	// and continues untouched when none did.
	Set string `toml:"set"`

	set *route
	// byName are every set, when Set is empty.
	byName map[string]*route
}

// route is a set as the stage uses it, with its fallback.
type route struct {
	*destinations.Set
	failover   pipeline.Failover
	retryAfter time.Duration
	fallback   *route
}

var (
	_ pipeline.RequestStage = (*Dispatch)(nil)
	_ pipeline.Provisioner  = (*Dispatch)(nil)
	_ pipeline.ReadOnly     = (*Dispatch)(nil)
)

// Provision finds the set and its fallbacks, and takes their
// destinations from the shared pool: a reload keeps their health.
func (d *Dispatch) Provision(b *pipeline.BuildContext) error {
	cfg := b.Pipeline.Config
	if d.Set == "" {
		if len(cfg.Sets) == 0 {
			return fmt.Errorf("set: missing, and the config declares no [[set]] to choose from")
		}
		d.byName = map[string]*route{}
		for _, sc := range cfg.Sets {
			r, err := provisionSet(b, cfg, sc.Name, map[string]bool{})
			if err != nil {
				return err
			}
			d.byName[sc.Name] = r
		}
		return nil
	}
	if cfg.FindSet(d.Set) == nil {
		return fmt.Errorf("set: unknown set %q (sets: %s)", d.Set, cfg.SetNames())
	}
	var err error
	d.set, err = provisionSet(b, cfg, d.Set, map[string]bool{})
	return err
}

func provisionSet(b *pipeline.BuildContext, cfg *config.File, name string, seen map[string]bool) (*route, error) {
	sc := cfg.FindSet(name)
	if sc == nil || seen[name] {
		return nil, nil // config.validateSets reported it
	}
	seen[name] = true
	check, err := checkOf(sc.Check)
	if err != nil {
		return nil, fmt.Errorf("set %q: check: %w", name, err)
	}
	r := &route{
		Set:        &destinations.Set{Name: sc.Name, Algorithm: sc.Algorithm, Attempts: sc.Attempts},
		failover:   pipeline.Failover{Codes: sc.FailoverCodes, Timeout: sc.FailoverTimeout.D()},
		retryAfter: sc.RetryAfter.D(),
	}
	for _, dc := range sc.Destinations {
		var uri sip.Uri
		if err := sip.ParseUri(dc.URI, &uri); err != nil {
			return nil, fmt.Errorf("set %q: destination %q: %w", name, dc.URI, err)
		}
		dest, err := pipeline.Share(b, destinations.Key(sc.Name, dc.URI), func() (*destinations.Destination, error) {
			d := destinations.New(sc.Name, uri, outbound(b), b.Services.Now, b.Services.Log.With("layer", "destinations"))
			d.Configure(dc.Weight, dc.Priority, check)
			d.Start()
			return d, nil
		})
		if err != nil {
			return nil, err
		}
		dest.Configure(dc.Weight, dc.Priority, check)
		b.AddSetMember(sc.Name, dest)
		r.Destinations = append(r.Destinations, dest)
	}
	if sc.Fallback != "" {
		if r.fallback, err = provisionSet(b, cfg, sc.Fallback, seen); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// outbound is how the checks go out: nowhere while a config is only
// checked.
func outbound(b *pipeline.BuildContext) pipeline.Outbound {
	if b.Services.Checking {
		return nil
	}
	return b.Services.Outbound
}

func checkOf(c config.SetCheck) (destinations.Check, error) {
	var from sip.Uri
	if err := sip.ParseUri(c.From, &from); err != nil {
		return destinations.Check{}, err
	}
	return destinations.Check{
		Interval: c.Interval.D(), Timeout: c.Timeout.D(), DownAfter: c.DownAfter, UpAfter: c.UpAfter,
		AliveCodes: c.AliveCodes, From: from, PassiveDown: config.DefaultSetRetryAfter,
	}, nil
}

// ServeRequest sets the request's target to the set's chosen destination,
// with the others to fail over to, and lets the next stage (forward)
// send it. With no live destination in the set or its fallbacks, it
// answers 503 with Retry-After.
func (d *Dispatch) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	set := d.set
	if d.byName != nil {
		if set = d.byName[ctx.Route.Set]; set == nil {
			return pipeline.Continue, nil
		}
	}
	for r := set; r != nil; r = r.fallback {
		order := r.Order(ctx.Request)
		if len(order) == 0 {
			continue
		}
		targets := make([]pipeline.Target, len(order))
		for i, dest := range order {
			targets[i] = targetFor(ctx.Request, dest)
		}
		first := targets[0]
		fo := r.failover
		fo.Next = targets[1:]
		first.Failover = &fo
		ctx.Targets = []pipeline.Target{first}
		return pipeline.Continue, nil
	}
	res := ctx.Reply(503, "Service Unavailable")
	secs := (set.back() + time.Second - 1) / time.Second
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(int(secs))))
	return pipeline.Replied, nil
}

// back is the Retry-After of a set with no live destination: the soonest
// any destination's own Retry-After ends, else the set's retry_after.
func (r *route) back() time.Duration {
	var soonest time.Duration
	for _, d := range r.Destinations {
		if w := d.Back(); w > 0 && (soonest == 0 || w < soonest) {
			soonest = w
		}
	}
	if soonest == 0 {
		return r.retryAfter
	}
	return soonest
}

// targetFor is the branch of req to dest: the Request-URI keeps its user
// (the number dialled) and takes the destination's host, port and
// parameters, as Kamailio's ds_select_domain does; a destination URI
// with a user part sets the user too.
func targetFor(req *sip.Request, dest *destinations.Destination) pipeline.Target {
	u := req.Recipient.Clone()
	u.Scheme = dest.URI.Scheme
	u.Host = dest.URI.Host
	u.Port = dest.URI.Port
	if dest.URI.User != "" {
		u.User = dest.URI.User
	}
	if dest.URI.UriParams.Length() > 0 {
		u.UriParams = dest.URI.UriParams.Clone()
	}
	return pipeline.Target{URI: *u, Hops: dest.Hops(), Observer: dest}
}

// ReadOnly reports that the stage changes nothing a rule reads: it sets
// the targets, or answers.
func (*Dispatch) ReadOnly() bool { return true }
