package pipeline

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// Source is where a message came from.
type Source struct {
	IP   netip.Addr
	Port int
}

// String returns "ip:port" ("[ip]:port" for IPv6).
func (s Source) String() string { return s.AddrPort().String() }

// AddrPort returns the source as an address and port.
func (s Source) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.IP, uint16(s.Port)) }

// Target is one destination of a forwarded request: a branch.
type Target struct {
	// URI becomes the branch's Request-URI.
	URI sip.Uri
	// Destination, when set, is the "ip:port" the request is sent to instead
	// of the address the URI or Route set names (a registered device's
	// source address, for phones behind NAT or on a TCP connection).
	Destination string
	// Transport, when set, is "UDP", "TCP", "TLS", "WS" or "WSS" for Destination.
	Transport string
	// Path is a Route set to put in front of the request (RFC 3327).
	Path []string
	// Instance is the +sip.instance of a binding that is an RFC 5626
	// flow (it has a reg-id), "" for any other. Of the targets of one
	// instance, the engine sends to the first whose flow is up and
	// answers 430 Flow Failed for those whose connection is gone.
	Instance string
	// Hops, when set, are the addresses the branch is sent to, in order:
	// it fails over to the next on a transport error, on no response
	// within ForwardOptions.FailoverTimeout, or on a 503 (RFC 3263 4.3).
	// Empty, the engine resolves the next hop's host name into them
	// (resolve.Resolver); a stage may set them itself, from the same
	// resolver, to send to addresses of its choosing.
	Hops []resolve.Target
	// Failover, when set, names the targets the request goes to next,
	// one after the other, when this one fails (a destination set).
	Failover *Failover
	// Observer, when set, hears how each attempt at the target went.
	Observer AttemptObserver
	// Credentials, when set, answer a 401 or 407 from the target: the
	// request is sent once more with them, and the caller sees the
	// challenge only if that one is challenged too.
	Credentials Credentials
}

// ForwardOptions are the forward stage's settings for one request.
type ForwardOptions struct {
	// ProvisionalTimeout cancels a branch that sent no provisional response
	// in this time (fr_timeout).
	ProvisionalTimeout time.Duration
	// InviteTimeout cancels an INVITE branch that has no final response in
	// this time after its last provisional (Timer C).
	InviteTimeout time.Duration
	// FailoverTimeout moves a branch on to its next hop when its current
	// one sent no response at all in this time (0: DefaultFailoverTimeout).
	FailoverTimeout time.Duration
}

// DefaultFailoverTimeout is ForwardOptions.FailoverTimeout's default: a
// few seconds, far short of Timer B (32 s), in which an INVITE over UDP
// is sent four times.
const DefaultFailoverTimeout = 4 * time.Second

// Context is one request's trip through the request stages. Stages read and
// change Request, which is the proxy's own copy of what was received.
type Context struct {
	// Request is the proxy's copy of the received request.
	Request *sip.Request
	// Source and Transport say where it came from ("UDP", "TCP", "TLS", "WS", "WSS").
	Source    Source
	Transport string
	// Received is when the request arrived.
	Received time.Time
	// Targets are the branches the request is forwarded to; the location
	// stage fills them in.
	Targets []Target
	// RecordRoute asks the engine to add Record-Route on every branch.
	RecordRoute bool
	// Routed is true when the request arrived with a Route of ours on top,
	// which the engine removed (loose routing, RFC 3261 16.4).
	Routed bool
	// SignedRoute is true when that Route carried this proxy's signature
	// for the request's own dialog (see DialogToken): the request follows
	// a route set that this proxy put in place. It is not the rules'
	// in_dialog, which says only that the request has a To tag. For a
	// request with a To tag, the engine has also found the dialog in the
	// dialog store and checked that it goes from one end to the other.
	SignedRoute bool
	// AuthUser is the user whose credentials the auth stage checked out
	// for the request ("" when none did): the rules' auth.user.
	AuthUser string
	// Forward holds the forward stage's settings.
	Forward ForwardOptions
	// Route is what the dial plan picked: the destination set to send to.
	Route Route
	// Next, when set, says where the request goes when every branch to
	// Targets failed (call forwarding, serial forking by q-value).
	Next *Next
	// Attempts, for an initial INVITE, records the branches and forwards
	// of the call (nil for other requests).
	Attempts *Attempts
	// Log is the engine's logger, with the Call-ID.
	Log *slog.Logger

	pipeline *Pipeline
	reply    *sip.Response
	// rules is the rule environment of the request: nil until a rule reads
	// it, and again once the stages are done.
	rules *lazyEnv
}

// NewContext returns a Context for req as received from src over transport.
// The engine and the stage test helpers build contexts with it.
func NewContext(p *Pipeline, req *sip.Request, src Source, transport string) *Context {
	return &Context{
		Request:   req,
		Source:    src,
		Transport: transport,
		Received:  time.Now(),
		Log:       slog.Default(),
		pipeline:  p,
	}
}

// Pipeline returns the pipeline the request runs on.
func (c *Context) Pipeline() *Pipeline { return c.pipeline }

// Reply makes the response to the request. The engine sends it after the
// response stages, and the stage returns Replied. Reply returns the response
// so that the stage can add headers to it.
func (c *Context) Reply(code int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(c.Request, code, reason, nil)
	res.SipVersion = "SIP/2.0" // even to a request of another version (505)
	c.reply = res
	return res
}

// SetReply makes res the answer to the request.
func (c *Context) SetReply(res *sip.Response) { c.reply = res }

// Response returns the reply a stage made, if any.
func (c *Context) Response() *sip.Response { return c.reply }

// IsOurs reports whether a URI names this proxy: its host is one of our
// domains (any port), or its host and port are those of a socket we listen on.
func (c *Context) IsOurs(u *sip.Uri) bool { return c.pipeline.Ours.URI(u) }

// AOR returns the address-of-record key of a URI, by the config's rule.
func (c *Context) AOR(u *sip.Uri) string { return c.pipeline.AORKey(u) }

// Services returns the long-lived services.
func (c *Context) Services() *Services { return c.pipeline.Services }

// ResponseContext is one response's trip through the response stages on
// its way upstream. Stages may change Response: it is the proxy's own copy.
type ResponseContext struct {
	// Response is about to be sent upstream.
	Response *sip.Response
	// Request is the request it answers, as the proxy received it (read only).
	Request *sip.Request
	// Local is true for responses the proxy made itself.
	Local bool
	// Source is where the request came from; Transport its transport.
	Source    Source
	Transport string
	// AuthUser is the request's Context.AuthUser, as the request stages
	// left it ("" for a response relayed without its request).
	AuthUser string
	// Log is the engine's logger, with the Call-ID.
	Log *slog.Logger

	pipeline *Pipeline
	// rules is the rule environment of the response: nil until a rule reads
	// it, and again once the stages are done.
	rules *lazyEnv
}

// NewResponseContext returns a ResponseContext for res, the answer to req.
func NewResponseContext(p *Pipeline, req *sip.Request, res *sip.Response, local bool, src Source, transport string) *ResponseContext {
	return &ResponseContext{
		Response:  res,
		Request:   req,
		Local:     local,
		Source:    src,
		Transport: transport,
		Log:       slog.Default(),
		pipeline:  p,
	}
}

// Pipeline returns the pipeline the response runs on.
func (c *ResponseContext) Pipeline() *Pipeline { return c.pipeline }

// Services returns the long-lived services.
func (c *ResponseContext) Services() *Services { return c.pipeline.Services }
