// Package redirect is the `redirect` stage, an example of a stage written
// outside Switchboard: it answers calls to configured numbers with a
// redirect (302 Moved Temporarily) to another user, and lets everything
// else through.
package redirect

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "redirect",
		Description: "answers new INVITEs to configured numbers with 302 (or 301) and a Contact naming another user",
		New:         func() pipeline.Stage { return New() },
	})
}

// DefaultCode is the status code of the redirect when `code` is not set.
const DefaultCode = sip.StatusMovedTemporarily

// reasons are the reason phrases of the codes the stage answers with.
var reasons = map[int]string{
	sip.StatusMovedPermanently: "Moved Permanently",
	sip.StatusMovedTemporarily: "Moved Temporarily",
}

// StatsKey is the key of the stage's Stats in pipeline.Services.Shared.
const StatsKey = "redirect/stats"

// Redirect is the redirect stage.
type Redirect struct {
	// Map maps the user part of a Request-URI (a number, a name) to where
	// calls to it go: a SIP URI, or a bare user, which is that user at the
	// Request-URI's host.
	Map map[string]string `toml:"map"`
	// Code is 302 (Moved Temporarily, the default) or 301 (Moved
	// Permanently).
	Code int `toml:"code"`

	// targets is Map parsed, by user; stats count what the stage did.
	targets map[string]target
	stats   *Stats
}

var (
	_ pipeline.RequestStage = (*Redirect)(nil)
	_ pipeline.Provisioner  = (*Redirect)(nil)
	_ pipeline.Validator    = (*Redirect)(nil)
)

// Stats count what every redirect stage did, across reloads: a reload
// makes new stages, which share the old ones' Stats (pipeline.Share).
// Switchboard does not export them as Prometheus metrics yet (see
// README.md, Metrics).
type Stats struct {
	// Redirected counts the calls answered with a redirect.
	Redirected atomic.Int64
}

// target is where calls to one user go: a whole URI, or a user at the
// Request-URI's host.
type target struct {
	uri  *sip.Uri
	user string
}

// New returns a redirect stage with its defaults. Like every constructor
// it does nothing else: resources come in Provision.
func New() *Redirect {
	return &Redirect{Code: DefaultCode}
}

// Validate checks the settings. It is fast and has no side effects; it
// returns one error per mistake, each naming the key and the entry.
func (r *Redirect) Validate() error {
	var errs []error
	switch r.Code {
	case sip.StatusMovedPermanently, sip.StatusMovedTemporarily:
	default:
		errs = append(errs, fmt.Errorf("code: %d is not 301 (Moved Permanently) or 302 (Moved Temporarily)", r.Code))
	}
	if len(r.Map) == 0 {
		errs = append(errs, errors.New(`map: empty: give at least one entry, such as map = { "100" = "alice" }`))
	}
	for _, user := range sortedUsers(r.Map) {
		if _, err := parseTarget(user, r.Map[user]); err != nil {
			errs = append(errs, fmt.Errorf("map: %q: %w", user, err))
		}
	}
	return errors.Join(errs...)
}

// Provision parses the map, and shares the Stats of the pipelines before
// it.
func (r *Redirect) Provision(b *pipeline.BuildContext) error {
	r.targets = make(map[string]target, len(r.Map))
	for user, value := range r.Map {
		t, _ := parseTarget(user, value)
		r.targets[user] = t
	}
	var err error
	r.stats, err = pipeline.Share(b, StatsKey, func() (*Stats, error) { return new(Stats), nil })
	return err
}

// ServeRequest answers a new INVITE to one of our users in the map with a
// redirect; any other request goes on unchanged.
func (r *Redirect) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	req := ctx.Request
	if req.Method != sip.INVITE || !ctx.IsOurs(&req.Recipient) {
		return pipeline.Continue, nil
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		return pipeline.Continue, nil // a re-INVITE in a dialog stays in it
	}
	t, ok := r.targets[req.Recipient.User]
	if !ok {
		return pipeline.Continue, nil
	}
	res := ctx.Reply(r.Code, reasons[r.Code])
	res.AppendHeader(&sip.ContactHeader{Address: t.at(&req.Recipient)})
	r.stats.Redirected.Add(1)
	return pipeline.Replied, nil
}

// at returns the target's URI for a request to ruri.
func (t target) at(ruri *sip.Uri) sip.Uri {
	if t.uri != nil {
		return *t.uri.Clone()
	}
	return sip.Uri{Scheme: ruri.Scheme, User: t.user, Host: ruri.Host, Port: ruri.Port}
}

// parseTarget parses the value of a map entry.
func parseTarget(user, value string) (target, error) {
	if err := checkUser(user); err != nil {
		return target{}, err
	}
	if !strings.Contains(value, ":") {
		if strings.Contains(value, "@") {
			return target{}, fmt.Errorf("%q is neither a user nor a SIP URI: write sip:%s", value, value)
		}
		if err := checkUser(value); err != nil {
			return target{}, fmt.Errorf("the target %w", err)
		}
		return target{user: value}, nil
	}
	var u sip.Uri
	if err := sip.ParseUri(value, &u); err != nil {
		return target{}, fmt.Errorf("%q is not a SIP URI: %w", value, err)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "sip") && !strings.EqualFold(u.Scheme, "sips"):
		return target{}, fmt.Errorf("%q is not a SIP URI: the scheme is not sip or sips", value)
	case u.Host == "":
		return target{}, fmt.Errorf("%q is not a SIP URI: it has no host", value)
	case u.User == "":
		return target{}, fmt.Errorf("%q names no user: write sip:user@host", value)
	}
	return target{uri: &u}, nil
}

// checkUser checks that s can be the user part of a SIP URI (RFC 3261
// 25.1: unreserved characters, &=+$,;?/ and %HH escapes).
func checkUser(s string) error {
	if s == "" {
		return errors.New(`"" is not a user`)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0:
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			i += 2
		default:
			return fmt.Errorf("%q is not a user: %q is not allowed in one", s, s[i:i+1])
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func sortedUsers(m map[string]string) []string {
	users := make([]string, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	sort.Strings(users)
	return users
}
