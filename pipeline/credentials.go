package pipeline

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Credentials answer the digest challenges of a next hop that asks the
// proxy itself to authenticate (a SIP trunk's 401 or 407): the engine
// sends the challenged request once more with the header Authorize
// returns, in a new client transaction of the same server transaction.
type Credentials interface {
	// Authorize returns the Authorization (for a 401) or
	// Proxy-Authorization (for a 407) that answers res, the challenge to
	// req as the proxy sent it, or false when it holds no credentials for
	// the challenge's realm or algorithms.
	Authorize(req *sip.Request, res *sip.Response) (sip.Header, bool)
}

// Sender sends requests the proxy originates itself, such as the
// REGISTER of an outbound registration, and returns their final response.
// The engine is the Sender of Services.
type Sender interface {
	// Send sends req to its Request-URI (resolved by RFC 3263 when it
	// names a host), from the proxy's socket for the transport, in a
	// client transaction, adding the Via. It returns the final response,
	// or an error when none came (a timeout, a transport error) or ctx
	// ended first.
	Send(ctx context.Context, req *sip.Request) (*sip.Response, error)
}

// RegistrationInfo is the state of an outbound registration, for the
// admin API.
type RegistrationInfo struct {
	Registrar string `json:"registrar"`
	AOR       string `json:"aor"`
	Contact   string `json:"contact"`
	// State is "registering" (before the first answer), "registered" or
	// "failed".
	State string `json:"state"`
	// Expires is when the registration lapses unless refreshed; Refresh
	// when the next REGISTER goes out.
	Expires time.Time `json:"expires,omitzero"`
	Refresh time.Time `json:"refresh,omitzero"`
	// LastError is why the last REGISTER failed ("" after a success), and
	// Failures how many failed in a row.
	LastError string    `json:"last_error,omitempty"`
	Failures  int       `json:"failures,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// RegistrationLister is implemented by shared values that register to
// providers; the admin API reads every one.
type RegistrationLister interface {
	Registrations() []RegistrationInfo
}

// Registrations returns the state of every outbound registration.
func (s *Services) Registrations() []RegistrationInfo {
	var out []RegistrationInfo
	s.Shared.Range(func(_ string, v any) {
		if l, ok := v.(RegistrationLister); ok {
			out = append(out, l.Registrations()...)
		}
	})
	return out
}
