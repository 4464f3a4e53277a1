package auth

import (
	"errors"
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// Reason phrases of the answers to valid credentials that are not bound to
// the request.
const (
	reasonWrongURI  = "Bad Request: digest uri is not the Request-URI"
	reasonWrongFrom = "Forbidden: From is not the authenticated user"
)

// forRequestURI reports whether the digest uri of credentials is the
// Request-URI, compared as URIs (RFC 3261 19.1.4): RFC 3261 22.4 makes the
// digest-uri the Request-URI, and RFC 2617 3.2.2.5 has the server check it,
// so that credentials for one request cannot carry another to a gateway.
func forRequestURI(c credentials, ruri *sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(c.param("uri"), &u); err != nil {
		return false
	}
	return pipeline.SameURI(&u, ruri)
}

// isUser reports whether the URI u is user's: its user part is the user's
// name and, when AORs are keyed by user@domain, its host is the realm.
func (a *Auth) isUser(ctx *pipeline.Context, u *sip.Uri, user string) bool {
	return u.User == user && ctx.AOR(u) == ctx.AOR(&sip.Uri{User: user, Host: a.Realm})
}

// ownFrom reports whether user may send the request with its From: a From outside
// our domains claims none of our users, one inside must name user, unless
// user is one of any_from (a PBX, a gateway account).
func (a *Auth) ownFrom(ctx *pipeline.Context, user string) bool {
	from := ctx.Request.From()
	if from == nil || a.anyFrom[user] || !ctx.IsOurs(&from.Address) {
		return true
	}
	return a.isUser(ctx, &from.Address, user)
}

// checkAnyFrom checks the any_from key: users of the users file, each once.
func checkAnyFrom(list []string, users map[string]user, realm string) (map[string]bool, error) {
	out := make(map[string]bool, len(list))
	var errs []error
	for _, name := range list {
		switch _, known := users[name]; {
		case name == "":
			errs = append(errs, errors.New("an empty user name"))
		case out[name]:
			errs = append(errs, fmt.Errorf("%q is given twice", name))
		case users != nil && !known:
			errs = append(errs, fmt.Errorf("%q is not a user of realm %q in the users file", name, realm))
		}
		out[name] = true
	}
	if len(errs) > 0 {
		return nil, prefixed("any_from", errors.Join(errs...))
	}
	return out, nil
}
