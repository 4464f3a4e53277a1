package stagetest

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// RequestOption changes the Context of one request before the stages run.
type RequestOption func(*pipeline.Context)

// From makes the request come from "ip:port", for this request only. It
// panics on an address that is not one.
func From(addr string) RequestOption {
	ap := netip.MustParseAddrPort(addr)
	return func(c *pipeline.Context) { c.Source = pipeline.Source{IP: ap.Addr().Unmap(), Port: int(ap.Port())} }
}

// Over makes the request come over transport ("UDP" or "TCP"), for this
// request only.
func Over(transport string) RequestOption {
	return func(c *pipeline.Context) { c.Transport = strings.ToUpper(transport) }
}

// At makes the request arrive at the given time (Context.Received).
func At(when time.Time) RequestOption {
	return func(c *pipeline.Context) { c.Received = when }
}

// Routed marks the request as arrived with a Route of ours on top, which
// the engine's route processing removed, with a valid dialog signature
// (Context.Routed and Context.SignedRoute): an in-dialog request on a dialog
// this proxy record-routed.
func Routed() RequestOption {
	return func(c *pipeline.Context) { c.Routed, c.SignedRoute = true, true }
}

// RoutedUnsigned makes the request one that arrived with a Route of ours on
// top whose dialog signature does not check out: a Route copied into a
// forged request, or one along a Path (which carries none).
func RoutedUnsigned() RequestOption {
	return func(c *pipeline.Context) { c.Routed = true }
}

// Context returns the Context that Request runs req in, for a test that
// calls a stage's method itself: on a clone of req, from the harness's
// source, received at its clock's time, changed by opts.
func (h *Harness) Context(req *sip.Request, opts ...RequestOption) *pipeline.Context {
	ctx := pipeline.NewContext(h.Pipeline, req.Clone(), h.source, h.transport)
	ctx.Received = h.now()
	ctx.Log = h.log
	for _, opt := range opts {
		opt(ctx)
	}
	// The engine's requests carry where they came from: sipgo's
	// NewResponseFromRequest reads it for rport and received.
	ctx.Request.SetSource(ctx.Source.String())
	ctx.Request.SetTransport(ctx.Transport)
	return ctx
}

// Request runs req through the request stages, as the engine does with a
// received request: on a clone of it, from the harness's source, until a
// stage replies, drops or forwards. A reply then runs through the response
// stages, as a reply the proxy makes does. req itself is not changed.
func (h *Harness) Request(req *sip.Request, opts ...RequestOption) *Result {
	h.t.Helper()
	received := req.Clone()
	ctx := h.Context(received, opts...)
	received.SetSource(ctx.Source.String())
	received.SetTransport(ctx.Transport)

	r := &Result{Received: received, Context: ctx}
	r.Verdict, r.Err = h.Pipeline.ServeRequest(ctx, func(s pipeline.Step) {
		r.Steps = append(r.Steps, s)
		if s.Matched {
			r.Ran = append(r.Ran, s.Stage)
		} else {
			r.Skipped = append(r.Skipped, s.Stage)
		}
	})
	r.Request = ctx.Request
	r.Targets = ctx.Targets
	r.RecordRoute = ctx.RecordRoute
	r.Forward = ctx.Forward
	if r.Err != nil {
		return r
	}
	switch r.Verdict {
	case pipeline.Replied:
		made := ctx.Response()
		r.Made = made.Clone()
		if received.IsAck() {
			return r // an ACK is never answered
		}
		rc := pipeline.NewResponseContext(h.Pipeline, received, made, true, ctx.Source, ctx.Transport)
		rc.Log = h.log
		rc.AuthUser = ctx.AuthUser
		r.ReplySteps, r.ReplyErr = h.serveResponse(rc)
		r.Reply = made
	case pipeline.Forwarded:
		r.Forwarded = ctx.Request
	}
	return r
}

// ResponseOption changes the ResponseContext of one response before the
// response stages run.
type ResponseOption func(*pipeline.ResponseContext)

// Local marks the response as made by the proxy (ResponseContext.Local):
// a stage's reply, the 100 Trying, the 487 to a cancelled INVITE. Without
// it the response is relayed from downstream.
func Local() ResponseOption {
	return func(c *pipeline.ResponseContext) { c.Local = true }
}

// Response runs res through the response stages, as the engine does with a
// response on its way upstream, relayed from downstream unless Local is
// given. req is the request it answers, as received; nil is a 2xx
// retransmission relayed without its transaction. Neither is changed: the
// stages run on a clone of res.
func (h *Harness) Response(req *sip.Request, res *sip.Response, opts ...ResponseOption) *ResponseResult {
	h.t.Helper()
	received := res.Clone()
	work := res.Clone()
	rc := pipeline.NewResponseContext(h.Pipeline, req, work, false, h.source, h.transport)
	rc.Log = h.log
	for _, opt := range opts {
		opt(rc)
	}
	r := &ResponseResult{Received: received}
	steps, err := h.serveResponse(rc)
	r.Response, r.Steps, r.Err = rc.Response, steps, err
	for _, s := range steps {
		if s.Matched {
			r.Ran = append(r.Ran, s.Stage)
		} else {
			r.Skipped = append(r.Skipped, s.Stage)
		}
	}
	return r
}

func (h *Harness) serveResponse(rc *pipeline.ResponseContext) ([]pipeline.Step, error) {
	var steps []pipeline.Step
	err := h.Pipeline.ServeResponse(rc, func(s pipeline.Step) { steps = append(steps, s) })
	return steps, err
}

// Result is what the request stages did with one request.
type Result struct {
	// Verdict is the chain's verdict: Continue when every stage continued
	// (the engine then answers 403 or 404 itself).
	Verdict pipeline.Verdict
	// Err is the error a stage returned (a *pipeline.StageError naming
	// it); the engine answers it with 500.
	Err error

	// Received is the request as the harness received it.
	Received *sip.Request
	// Request is the proxy's copy as the stages left it (Context.Request),
	// whatever the verdict.
	Request *sip.Request
	// Forwarded is Request when the verdict is Forwarded, else nil.
	Forwarded *sip.Request
	// Targets are the branches the stages chose (Context.Targets).
	Targets []pipeline.Target
	// RecordRoute is true when a stage asked for Record-Route.
	RecordRoute bool
	// Forward holds the forward stage's settings (Context.Forward).
	Forward pipeline.ForwardOptions

	// Made is the reply as the stage made it, before the response stages;
	// nil unless the verdict is Replied.
	Made *sip.Response
	// Reply is the reply as the engine sends it upstream, after the
	// response stages; nil unless the verdict is Replied (and for an ACK,
	// which is never answered).
	Reply *sip.Response
	// ReplyErr is the error of a response stage on the reply; the engine
	// logs it and sends the reply as it stands.
	ReplyErr error

	// Steps are what each request stage did, in order, as the trace logs
	// them; ReplySteps are those of the response stages on the reply.
	Steps      []pipeline.Step
	ReplySteps []pipeline.Step
	// Ran are the labels (`stage 2 (rewrite)`) of the stages that ran;
	// Skipped those whose `when` rule did not match.
	Ran     []string
	Skipped []string

	// Context is the request's Context, for anything else.
	Context *pipeline.Context
}

// Code returns the status code of the reply, or 0 without one.
func (r *Result) Code() int {
	if r.Reply == nil {
		return 0
	}
	return r.Reply.StatusCode
}

// Reason returns the reason phrase of the reply, or "".
func (r *Result) Reason() string {
	if r.Reply == nil {
		return ""
	}
	return r.Reply.Reason
}

// Header returns the first value of a header of the message the chain
// passes on: the reply when there is one, else the proxy's copy of the
// request. It returns "" when there is no such header.
func (r *Result) Header(name string) string {
	return first(r.Headers(name))
}

// Headers returns every value of a header of the message the chain passes
// on (see Header).
func (r *Result) Headers(name string) []string {
	if r.Reply != nil {
		return values(r.Reply, name)
	}
	return values(r.Request, name)
}

// Changed returns what the request stages changed in the request.
func (r *Result) Changed() Diff { return Changed(r.Received, r.Request) }

// ReplyChanged returns what the response stages changed in the reply.
func (r *Result) ReplyChanged() Diff {
	if r.Reply == nil {
		return nil
	}
	return Changed(r.Made, r.Reply)
}

// String sums the result up for test failures: `replied 302 Moved
// Temporarily (ran: stage 1 (redirect))`.
func (r *Result) String() string {
	var b strings.Builder
	b.WriteString(r.Verdict.String())
	switch {
	case r.Err != nil:
		fmt.Fprintf(&b, " with error %q", r.Err)
	case r.Reply != nil:
		fmt.Fprintf(&b, " %d %s", r.Reply.StatusCode, r.Reply.Reason)
	case r.Made != nil:
		fmt.Fprintf(&b, " %d %s", r.Made.StatusCode, r.Made.Reason)
	}
	if len(r.Targets) > 0 {
		uris := make([]string, len(r.Targets))
		for i, t := range r.Targets {
			uris[i] = t.URI.String()
		}
		fmt.Fprintf(&b, " targets [%s]", strings.Join(uris, ", "))
	}
	fmt.Fprintf(&b, " (ran: %s)", strings.Join(r.Ran, ", "))
	return b.String()
}

// ResponseResult is what the response stages did with one response.
type ResponseResult struct {
	// Received is the response as the harness received it.
	Received *sip.Response
	// Response is the response as the stages left it, as the engine sends
	// it upstream.
	Response *sip.Response
	// Err is the error a stage returned; the engine logs it and sends the
	// response as it stands.
	Err error
	// Steps, Ran and Skipped are as in Result.
	Steps   []pipeline.Step
	Ran     []string
	Skipped []string
}

// Code returns the status code of the response.
func (r *ResponseResult) Code() int { return r.Response.StatusCode }

// Reason returns the reason phrase of the response.
func (r *ResponseResult) Reason() string { return r.Response.Reason }

// Header returns the first value of a header of the response, or "".
func (r *ResponseResult) Header(name string) string { return first(values(r.Response, name)) }

// Headers returns every value of a header of the response.
func (r *ResponseResult) Headers(name string) []string { return values(r.Response, name) }

// Changed returns what the response stages changed in the response.
func (r *ResponseResult) Changed() Diff { return Changed(r.Received, r.Response) }

// values returns the values of every header called name (in any case) of m.
func values(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
