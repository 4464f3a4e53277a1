package engine

import (
	"github.com/emiago/sipgo/sip"
)

// bestResponse picks the final response to send upstream when no branch
// answered with a 2xx (RFC 3261 16.7 step 6): a 6xx if any, else the
// lowest class, preferring within 4xx the responses a caller can act on
// (401, 407, 415, 420, 484). A 503 goes upstream as 500, since it speaks of
// this proxy's next hop, not of the proxy. The WWW-Authenticate and
// Proxy-Authenticate challenges of every 401 and 407 are merged into the
// chosen one (16.7 step 7). It returns a copy: the branch that received
// the response may still be reading it.
func bestResponse(finals []*sip.Response) *sip.Response {
	var chosen *sip.Response
	for _, r := range finals {
		if chosen == nil || better(r, chosen) {
			chosen = r
		}
	}
	if chosen == nil {
		return nil
	}
	best := chosen.Clone()
	if best.StatusCode == 401 || best.StatusCode == 407 {
		for _, r := range finals {
			if r == chosen || (r.StatusCode != 401 && r.StatusCode != 407) {
				continue
			}
			for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
				for _, h := range r.GetHeaders(name) {
					best.AppendHeader(sip.HeaderClone(h))
				}
			}
		}
	}
	if best.StatusCode == 503 {
		best.StatusCode = 500
		best.Reason = "Server Internal Error"
	}
	return best
}

// better reports whether a is a better final response than b.
func better(a, b *sip.Response) bool {
	ac, bc := a.StatusCode/100, b.StatusCode/100
	if ac == 6 || bc == 6 {
		return ac == 6 && bc != 6
	}
	if ac != bc {
		return ac < bc
	}
	if ac == 4 {
		return preferred4xx(a.StatusCode) && !preferred4xx(b.StatusCode)
	}
	return false
}

func preferred4xx(code int) bool {
	switch code {
	case 401, 407, 415, 420, 484:
		return true
	}
	return false
}
