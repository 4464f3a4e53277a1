// Package location is the `location` stage: it turns a request for one of
// our users into the branches where that user's devices are registered.
package location

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	loc "github.com/switchboard-sip/switchboard/pipeline/location"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "location",
		Description: "looks up the registered devices of the called user and makes them the targets; guards in-dialog and foreign requests",
		New:         func() pipeline.Stage { return new(Location) },
	})
}

// Location is the location lookup stage.
type Location struct {
	// HideUnknown is a rule: for the requests it selects, an unknown user
	// gets the answer of a known user with no live binding (480), so that
	// a caller cannot tell who exists. Empty: 404 for an unknown user.
	HideUnknown string `toml:"hide_unknown"`

	hide *pipeline.Rule
}

var (
	_ pipeline.RequestStage = (*Location)(nil)
	_ pipeline.ReadOnly     = (*Location)(nil)
	_ pipeline.Provisioner  = (*Location)(nil)
)

// Provision compiles the hide_unknown rule.
func (l *Location) Provision(*pipeline.BuildContext) error {
	l.hide = nil
	if strings.TrimSpace(l.HideUnknown) == "" {
		return nil
	}
	r, err := pipeline.CompileRule(l.HideUnknown)
	if err != nil {
		return fmt.Errorf("hide_unknown: %w", err)
	}
	l.hide = r
	return nil
}

// ServeRequest sets ctx.Targets for an initial request to one of our
// users, lets in-dialog requests that follow our route set through, and
// refuses the rest.
func (l *Location) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	req := ctx.Request
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if ctx.SignedRoute {
			return pipeline.Continue, nil
		}
		if req.IsAck() {
			return pipeline.Dropped, nil
		}
		ctx.Reply(404, "Not Found: no dialog through this proxy")
		return pipeline.Replied, nil
	}
	if ctx.Routed && pipeline.TopRoute(req) == nil && !ctx.IsOurs(&req.Recipient) {
		return l.viaPath(ctx)
	}
	if pipeline.TopRoute(req) != nil {
		ctx.Reply(403, "Forbidden: preloaded Route to another host")
		return pipeline.Replied, nil
	}
	if !ctx.IsOurs(&req.Recipient) {
		ctx.Reply(403, "Forbidden: Relaying Denied")
		return pipeline.Replied, nil
	}
	if req.Recipient.User == "" {
		ctx.Reply(404, "Not Found")
		return pipeline.Replied, nil
	}
	store := ctx.Services().Location
	if store == nil {
		return pipeline.Continue, fmt.Errorf("no location store")
	}
	bindings, known, err := store.Lookup(ctx.AOR(&req.Recipient), ctx.Received)
	if err != nil {
		return pipeline.Continue, fmt.Errorf("lookup %s: %w", ctx.AOR(&req.Recipient), err)
	}
	if len(bindings) == 0 {
		l.unavailable(ctx, known)
		return pipeline.Replied, nil
	}
	targets := Targets(ctx, bindings)
	if len(targets) == 0 {
		l.unavailable(ctx, true)
		return pipeline.Replied, nil
	}
	ctx.Targets = targets
	return pipeline.Continue, nil
}

// Targets turns the live bindings of one user into branches: the newest
// flow of each instance first, our own Path entries dropped. A binding
// that does not parse is skipped, with a warning.
func Targets(ctx *pipeline.Context, bindings []loc.Binding) []pipeline.Target {
	targets := make([]pipeline.Target, 0, len(bindings))
	for _, b := range newestFlowsFirst(bindings) {
		b.Path = ownPathDropped(ctx, b.Path)
		t, err := Target(b)
		if err != nil {
			ctx.Log.Warn("binding skipped", "aor", b.AOR, "contact", b.Contact, "error", err)
			continue
		}
		targets = append(targets, t)
	}
	return targets
}

// unavailable answers a request for a user with no binding to ring: 480
// Temporarily Unavailable for a user the store knows, 404 Not Found for
// one it does not, unless hide_unknown selects the request: then both get
// the same 480. The rule runs for both, so that they take the same work; a
// rule that fails hides.
func (l *Location) unavailable(ctx *pipeline.Context, known bool) {
	hide := false
	if l.hide != nil {
		ok, err := l.hide.Match(ctx)
		if err != nil {
			ctx.Log.Warn("hide_unknown failed: hiding", "error", err)
		}
		hide = ok || err != nil
	}
	if known || hide {
		ctx.Reply(480, "Temporarily Unavailable")
		return
	}
	ctx.Reply(404, "Not Found")
}

// viaPath serves an initial request that another instance sent us along a
// binding's Path (RFC 3327): its Request-URI is the Contact of a phone
// registered through us. It goes to that phone over the connection it
// registered on. Any other request with only our Route is refused: a Route
// to us does not make us a relay.
func (l *Location) viaPath(ctx *pipeline.Context) (pipeline.Verdict, error) {
	req := ctx.Request
	to := req.To()
	store := ctx.Services().Location
	if to != nil && store != nil {
		bindings, _, err := store.Lookup(ctx.AOR(&to.Address), ctx.Received)
		if err != nil {
			return pipeline.Continue, fmt.Errorf("lookup %s: %w", ctx.AOR(&to.Address), err)
		}
		want := req.Recipient.String()
		for _, b := range bindings {
			if strings.Trim(b.Contact, "<>") != want {
				continue
			}
			b.Path = ownPathDropped(ctx, b.Path)
			t, err := Target(b)
			if err != nil {
				break
			}
			ctx.Targets = []pipeline.Target{t}
			return pipeline.Continue, nil
		}
	}
	ctx.Reply(403, "Forbidden: Relaying Denied")
	return pipeline.Replied, nil
}

// ownPathDropped removes the Path entries that name this instance from the
// front of a binding's Path: the phone's connection is ours to use.
func ownPathDropped(ctx *pipeline.Context, path []string) []string {
	for len(path) > 0 {
		var u sip.Uri
		// No header parameters: only the URI is needed, and sipgo reads
		// them in time that grows with the square of their count.
		if _, err := sip.ParseAddressValue(path[0], &u, nil); err != nil || !ctx.IsOurs(&u) {
			break
		}
		path = path[1:]
	}
	return path
}

// Target turns a binding into a branch. A device registered over TCP,
// TLS or WebSocket (WS, WSS) is reached over the connection it registered
// on (a browser's Contact names a .invalid host, RFC 7118 section 5); one
// that registered over UDP from behind NAT (its NAT verdict, see
// pipeline.DetectNAT) at the address its REGISTER came from, with its
// Contact, as it wrote it, as the Request-URI; the others at their Contact.
func Target(b loc.Binding) (pipeline.Target, error) {
	var u sip.Uri
	if err := sip.ParseUri(strings.Trim(b.Contact, "<>"), &u); err != nil {
		return pipeline.Target{}, err
	}
	t := pipeline.Target{URI: u, Path: b.Path}
	if b.RegID() != "" {
		t.Instance = b.Instance
	}
	if b.Received == "" || len(b.Path) > 0 {
		// Through a Path, the next hop is the Path's first entry.
		return t, nil
	}
	if connected(b.Transport) || b.NAT {
		t.Destination, t.Transport = b.Received, strings.ToUpper(b.Transport)
	}
	return t, nil
}

// connected reports whether transport keeps a connection a binding is
// reached over.
func connected(transport string) bool {
	switch strings.ToUpper(transport) {
	case "TCP", "TLS", "WS", "WSS":
		return true
	}
	return false
}

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*Location) ReadOnly() bool { return true }
