package pipeline

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// Next is serial forking at the level of the whole transaction, as
// Kamailio's failure_route is: when every branch sent to the targets
// ended without a 2xx, the engine calls Then with how they ended, and
// sends the request to the targets it returns, all at once, under the
// Next it returns. Call forwarding (on busy, on no answer, when
// unavailable) and serial forking by q-value are built on it. The engine
// never calls Then after the caller's CANCEL or a 2xx.
type Next struct {
	// NoAnswer, when above 0, ends the targets' branches that ring this
	// long (from the first provisional response above 100) without an
	// answer: the engine cancels them and calls Then with NoAnswer set.
	NoAnswer time.Duration
	// Then says what comes after the targets: nil targets send the best
	// final response upstream.
	Then func(Outcome) ([]Target, *Next)
}

// Outcome is how one round of branches (the targets of a Context or of a
// Next) ended.
type Outcome struct {
	// Best is the best of the round's final responses (RFC 3261 16.7,
	// before a 503 becomes 500), nil when there was none. It is a copy.
	Best *sip.Response
	// Codes are the codes of all the round's final responses.
	Codes []int
	// NoAnswer is true when Next.NoAnswer ended the round.
	NoAnswer bool
	// Request is the request as the rounds send it, before any branch
	// changed it (read only): Context.Request became a branch.
	Request *sip.Request
}

// Only reports whether every code of the round is one of codes (and
// there is at least one).
func (o Outcome) Only(codes ...int) bool {
	if len(o.Codes) == 0 {
		return false
	}
	for _, c := range o.Codes {
		found := false
		for _, w := range codes {
			found = found || c == w
		}
		if !found {
			return false
		}
	}
	return true
}
