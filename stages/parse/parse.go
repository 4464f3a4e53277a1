// Package parse is the parse stage: the request checks of RFC 3261 section
// 16.3 (reasonable syntax, URI scheme, Max-Forwards, loop detection) made on
// the parsed request before any other stage sees it.
package parse

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "parse",
		Description: "checks requests as RFC 3261 16.3 asks: 400, 416, 483 and 482 with a reason",
		New:         func() pipeline.Stage { return New() },
	})
}

// defaultMaxForwards is the Max-Forwards value a request without the header
// is treated as having.
const defaultMaxForwards = 70

// Status codes sipgo has no constants for (RFC 3261 21).
const (
	statusUnsupportedURIScheme = 416 // 21.4.17
	statusBadExtension         = 420 // 21.4.15
	statusVersionNotSupported  = 505 // 21.5.6
)

// Parse checks every request it runs on and answers the broken ones.
type Parse struct {
	// CheckLoops turns on loop detection (482 Loop Detected).
	CheckLoops bool `toml:"check_loops"`
	// RequireContact answers an INVITE without a Contact with 400.
	RequireContact bool `toml:"require_contact"`
	// MaxHeaders answers a request with more header fields than this with
	// 400; 0 is no limit (the message size still bounds them).
	MaxHeaders int `toml:"max_headers"`
}

// DefaultMaxHeaders is max_headers' default: real requests carry 10 to 40
// header fields.
const DefaultMaxHeaders = 256

var (
	_ pipeline.RequestStage = (*Parse)(nil)
	_ pipeline.Validator    = (*Parse)(nil)
	_ pipeline.ReadOnly     = (*Parse)(nil)
)

// New returns a parse stage with its defaults: every check on.
func New() *Parse {
	return &Parse{CheckLoops: true, RequireContact: true, MaxHeaders: DefaultMaxHeaders}
}

// Validate checks the settings.
func (p *Parse) Validate() error {
	if p.MaxHeaders < 0 {
		return fmt.Errorf("max_headers: %d is negative (0 is no limit)", p.MaxHeaders)
	}
	return nil
}

// ServeRequest checks ctx.Request. A request that fails a check is
// answered (400, 416, 483 or 482, with a reason that names the problem)
// and the verdict is Replied; a broken ACK, which cannot be answered, is
// Dropped. A request that passes continues unchanged.
func (p *Parse) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	code, reason := p.check(ctx)
	if code == 0 {
		return pipeline.Continue, nil
	}
	if ctx.Request.IsAck() {
		// RFC 3261 17.2.3: an ACK is never answered.
		return pipeline.Dropped, nil
	}
	res := ctx.Reply(code, reason)
	if code == statusBadExtension {
		if h := ctx.Request.GetHeader("Proxy-Require"); h != nil {
			res.AppendHeader(sip.NewHeader("Unsupported", h.Value()))
		}
	}
	return pipeline.Replied, nil
}

// check returns the status code and reason phrase of the first check the
// request fails, or 0.
func (p *Parse) check(ctx *pipeline.Context) (int, string) {
	req := ctx.Request
	if req.SipVersion != "SIP/2.0" {
		return statusVersionNotSupported, "Version Not Supported: " + req.SipVersion
	}
	if p.MaxHeaders > 0 && len(req.Headers()) > p.MaxHeaders {
		return sip.StatusBadRequest, "Bad Request: more than " + strconv.Itoa(p.MaxHeaders) + " header fields"
	}
	if code, reason := checkHeaders(req); code != 0 {
		return code, reason
	}
	if code, reason := checkSingle(req); code != 0 {
		return code, reason
	}
	if code, reason := checkRequestURI(&req.Recipient); code != 0 {
		return code, reason
	}
	if cs := req.CSeq(); !strings.EqualFold(string(cs.MethodName), string(req.Method)) {
		return sip.StatusBadRequest, "Bad Request: CSeq method " + string(cs.MethodName) + " does not match request method " + string(req.Method)
	}
	if p.RequireContact && req.Method == sip.INVITE && req.Contact() == nil && !rfc2543(req) {
		return sip.StatusBadRequest, "Bad Request: missing Contact in INVITE"
	}
	if maxForwards(req) == 0 {
		if req.Method == sip.OPTIONS && ctx.IsOurs(&req.Recipient) {
			// RFC 3261 16.3 step 3: the proxy may answer an OPTIONS
			// addressed to itself; a later stage or the engine does.
			return 0, ""
		}
		return sip.StatusTooManyHops, "Too Many Hops"
	}
	if p.CheckLoops && looped(ctx) {
		return sip.StatusLoopDetected, "Loop Detected"
	}
	if h := header(req, "Proxy-Require"); h != nil && !req.IsAck() && req.Method != sip.CANCEL {
		// RFC 3261 16.3 step 5: this proxy supports no extension a client
		// may require of it.
		return statusBadExtension, "Bad Extension: " + strings.TrimSpace(h.Value())
	}
	return 0, ""
}

// single are the headers a request carries once (RFC 3261 7.3.1): two of
// them make the request ambiguous.
var single = [...]string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"}

// checkSingle refuses a request with two values of a single-value header.
// It reads the headers once, without sipgo's GetHeaders, which allocates
// a list for each name.
func checkSingle(req *sip.Request) (int, string) {
	var seen [len(single)]bool
	for _, h := range req.Headers() {
		name := h.Name()
		for i, s := range single {
			if !strings.EqualFold(name, s) {
				continue
			}
			if seen[i] {
				return sip.StatusBadRequest, "Bad Request: more than one " + s
			}
			seen[i] = true
		}
	}
	return 0, ""
}

// header returns the first header called name, in any case, or nil:
// sipgo's GetHeader allocates a lower-case copy of every name it passes
// that it does not know.
func header(req *sip.Request, name string) sip.Header {
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}

// checkHeaders checks that the headers every request needs are there.
func checkHeaders(req *sip.Request) (int, string) {
	missing := ""
	switch {
	case req.Via() == nil:
		missing = "Via"
	case req.From() == nil:
		missing = "From"
	case req.To() == nil:
		missing = "To"
	case req.CallID() == nil:
		missing = "Call-ID"
	case req.CSeq() == nil:
		missing = "CSeq"
	default:
		return 0, ""
	}
	return sip.StatusBadRequest, "Bad Request: missing " + missing
}

// checkRequestURI checks that the Request-URI is one the proxy can route:
// sip or sips with a host, or tel with a number (RFC 3261 16.3 step 2).
func checkRequestURI(u *sip.Uri) (int, string) {
	switch strings.ToLower(u.Scheme) {
	case "sip", "sips":
		if u.Host == "" {
			return sip.StatusBadRequest, "Bad Request: Request-URI has no host"
		}
		if len(u.Headers) > 0 {
			// RFC 3261 19.1.5: headers in a URI are for building a request,
			// never part of a Request-URI (RFC 4475 3.1.2.11).
			return sip.StatusBadRequest, "Bad Request: Request-URI carries headers"
		}
	case "tel":
		if u.Raw() == "" {
			return sip.StatusBadRequest, "Bad Request: Request-URI has no telephone number"
		}
	case "":
		return sip.StatusBadRequest, "Bad Request: Request-URI has no scheme"
	default:
		return statusUnsupportedURIScheme, "Unsupported URI Scheme: " + u.Scheme
	}
	return 0, ""
}

// maxForwards returns the request's Max-Forwards, defaultMaxForwards when
// it has none.
func maxForwards(req *sip.Request) int {
	if mf := req.MaxForwards(); mf != nil {
		return int(*mf)
	}
	return defaultMaxForwards
}

// rfc2543 reports whether req comes from an RFC 2543 client: its top Via
// branch has no magic cookie. Such clients may leave out the Contact of an
// INVITE (RFC 3261 8.1.1.8 made it mandatory).
func rfc2543(req *sip.Request) bool {
	via := req.Via()
	if via == nil {
		return false
	}
	branch, _ := via.Params.Get("branch")
	return !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie)
}

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*Parse) ReadOnly() bool { return true }
