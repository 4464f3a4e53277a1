package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// Failover is serial forking inside one transaction: when a target fails
// (no response at all within Timeout, a transport error, a 503 or one of
// Codes, once its own next hops are used up), the engine sends the
// request to Next[0], then Next[1], and so on. It never fails over after
// the caller's CANCEL, a 2xx or a 6xx.
type Failover struct {
	// Next are the targets tried after this one, in order.
	Next []Target
	// Codes are the final responses that fail over besides 503.
	Codes []int
	// Timeout is how long a target may send no response at all; 0 is
	// ForwardOptions.FailoverTimeout.
	Timeout time.Duration
}

// Then returns the failover that follows the first of f.Next, and that
// target: what the engine moves to when the current target fails.
func (f *Failover) Then() (Target, bool) {
	if f == nil || len(f.Next) == 0 {
		return Target{}, false
	}
	next := f.Next[0]
	rest := *f
	rest.Next = f.Next[1:]
	next.Failover = &rest
	return next, true
}

// FailsOver reports whether a final response with code moves the request
// on to the next target.
func (f *Failover) FailsOver(code int) bool {
	if code == 503 {
		return true
	}
	if code < 300 || code >= 600 {
		return false
	}
	for _, c := range f.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// AttemptObserver hears each attempt the engine makes at a target: the
// health of destination sets (requests in progress, passive checks,
// Retry-After) comes from it. Its methods must be fast and safe for
// concurrent use.
type AttemptObserver interface {
	// Attempted is called when the request was sent to hop, its "ip:port".
	Attempted(hop string)
	// Answered is called once per attempt: res is its final response,
	// or nil when it got none (timeout, transport error, or it was sent
	// nowhere: hop is then "").
	Answered(hop string, res *sip.Response)
}

// ErrNotRunning is what Outbound answers before the proxy runs a
// pipeline: a check then is not a failure of the destination.
var ErrNotRunning = errors.New("the proxy runs no pipeline yet")

// Outbound is the proxy's way out for stages that reach next hops on their
// own, such as the health checks of destination sets; the engine provides
// it (Services.Outbound).
type Outbound interface {
	// Resolve finds the addresses of a URI's host (RFC 3263).
	Resolve(ctx context.Context, uri *sip.Uri) ([]resolve.Target, error)
	// Options sends an OPTIONS for uri from our socket to hop, and
	// returns its final response; ctx bounds the wait.
	Options(ctx context.Context, uri sip.Uri, from sip.Uri, hop resolve.Target) (*sip.Response, error)
}
