// Package auth is the auth stage: SIP digest authentication (RFC 3261
// section 22) with SHA-256 and MD5 (RFC 7616, RFC 8760), qop=auth, against
// a file of HA1 hashes. It challenges REGISTER with 401 and other requests
// with 407, and lets a request with valid credentials go on without them.
//
// Nonces are stateless (an HMAC of their issue time) and expire; a nonce's
// count must grow, so that a request cannot be replayed. Failures are
// recorded per source address in ratelimit's Failures service, which the
// ratelimit stage reads to ban a source that fails too often.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/stages/ratelimit"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "auth",
		Description: "digest authentication (SHA-256, MD5) against a file of HA1 hashes: 401 for REGISTER, 407 for other requests",
		New:         func() pipeline.Stage { return New() },
	})
}

// Defaults of the stage's keys.
const (
	DefaultNonceTTL = 5 * time.Minute
)

// DefaultAlgorithms are the algorithms offered when `algorithms` is not set.
var DefaultAlgorithms = []string{"SHA-256", "MD5"}

// minSecretLen is the shortest nonce_secret accepted.
const minSecretLen = 16

// StatsKey is the key of the stage's Stats in pipeline.Services.Shared.
const StatsKey = "auth/stats"

// Auth is the auth stage.
type Auth struct {
	// Realm is the digest realm, usually the domain.
	Realm string `toml:"realm"`
	// Users is the file of HA1 hashes, relative to the config's folder.
	Users string `toml:"users"`
	// Algorithms are the digest algorithms offered: "SHA-256", "MD5".
	Algorithms []string `toml:"algorithms"`
	// NonceTTL is how long a nonce is good for.
	NonceTTL config.Duration `toml:"nonce_ttl"`
	// NonceSecret is the key of the nonces' HMAC; by default a random one
	// per process. Proxies that share it accept each other's nonces, and
	// nonces survive a restart.
	NonceSecret string `toml:"nonce_secret"`
	// AnyFrom are the users who may send requests with any From (a PBX,
	// a gateway account); every other user's From, in our domains, must
	// name the user.
	AnyFrom []string `toml:"any_from"`

	offered  []*algorithm
	users    map[string]user
	anyFrom  map[string]bool
	dummy    [2]string // the HA1 of users that do not exist
	key      nonceKey
	nonces   *nonceState
	failures *ratelimit.Failures
	stats    *Stats
}

var (
	_ pipeline.RequestStage = (*Auth)(nil)
	_ pipeline.Provisioner  = (*Auth)(nil)
	_ pipeline.Validator    = (*Auth)(nil)
)

// Stats count what the auth stages did since a pipeline first had one:
// they outlive the reloads that keep an auth stage. Switchboard does not
// export them as Prometheus metrics yet (see README.md, Metrics).
type Stats struct {
	// Challenges counts 401 and 407 answers, stale or not.
	Challenges atomic.Int64
	// Accepted counts requests let through with valid credentials.
	Accepted atomic.Int64
	// Failures counts credentials for our realm that were wrong: an
	// unknown user, a wrong password, a missing or unsupported parameter.
	Failures atomic.Int64
	// Stale counts challenges with stale=true: right password, but an
	// expired, unknown or replayed nonce.
	Stale atomic.Int64
	// Forbidden counts valid credentials refused with 403: a REGISTER
	// for another user's address, a From in our domains that is not the
	// user's.
	Forbidden atomic.Int64
	// WrongURI counts valid credentials whose digest uri is not the
	// Request-URI (400).
	WrongURI atomic.Int64
}

// New returns an auth stage with the default settings.
func New() *Auth {
	return &Auth{
		Algorithms: append([]string(nil), DefaultAlgorithms...),
		NonceTTL:   config.Duration(DefaultNonceTTL),
	}
}

// Validate checks the settings, each mistake naming its key.
func (a *Auth) Validate() error {
	var errs []error
	if a.Realm == "" {
		errs = append(errs, errors.New(`realm: empty: set the digest realm, usually the domain (realm = "example.org")`))
	}
	if a.Users == "" {
		errs = append(errs, errors.New(`users: empty: name the file of HA1 hashes (users = "users.txt")`))
	}
	if _, err := offered(a.Algorithms); err != nil {
		errs = append(errs, fmt.Errorf("algorithms: %w", err))
	}
	if a.NonceTTL.D() < time.Second {
		errs = append(errs, fmt.Errorf("nonce_ttl: %q is shorter than 1s", a.NonceTTL))
	}
	if a.NonceSecret != "" && len(a.NonceSecret) < minSecretLen {
		errs = append(errs, fmt.Errorf("nonce_secret: shorter than %d characters: leave it out for a random one", minSecretLen))
	}
	if _, err := checkAnyFrom(a.AnyFrom, nil, a.Realm); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// offered returns the algorithms of the `algorithms` key, most preferred
// first.
func offered(names []string) ([]*algorithm, error) {
	if len(names) == 0 {
		return nil, errors.New(`empty: offer "SHA-256", "MD5" or both`)
	}
	want := map[*algorithm]bool{}
	for _, name := range names {
		a, ok := lookupAlgorithm(name)
		if !ok {
			return nil, fmt.Errorf(`%q is not "SHA-256" or "MD5"`, name)
		}
		if want[a] {
			return nil, fmt.Errorf("%q is given twice", name)
		}
		want[a] = true
	}
	var out []*algorithm
	for _, a := range preference {
		if want[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// Provision reads the users file (and watches it, so that an edit
// reloads the config), and shares the nonce state, Stats and Failures of
// the pipelines before it.
func (a *Auth) Provision(b *pipeline.BuildContext) error {
	a.offered, _ = offered(a.Algorithms)
	path := b.Path(a.Users)
	b.Watch(path)
	users, err := loadUsers(path, a.Realm)
	if err != nil {
		return prefixed("users", err)
	}
	if !usable(users, a.offered) {
		return fmt.Errorf("users: %s: no user in realm %q has a hash for %s", path, a.Realm, names(a.offered))
	}
	a.users = users
	if a.anyFrom, err = checkAnyFrom(a.AnyFrom, users, a.Realm); err != nil {
		return err
	}
	for _, alg := range preference {
		var r [16]byte
		_, _ = rand.Read(r[:])
		a.dummy[alg.column] = alg.sum(hex.EncodeToString(r[:]))
	}

	a.nonces, err = pipeline.Share(b, noncesKey, func() (*nonceState, error) { return newNonceState(), nil })
	if err != nil {
		return err
	}
	a.key = nonceKey{secret: a.nonces.secret, realm: a.Realm}
	if a.NonceSecret != "" {
		a.key.secret = []byte(a.NonceSecret)
	}
	a.stats, err = pipeline.Share(b, StatsKey, func() (*Stats, error) { return new(Stats), nil })
	if err != nil {
		return err
	}
	a.failures, err = ratelimit.SharedFailures(b)
	return err
}

// prefixed names the key in each of the errors err joins.
func prefixed(key string, err error) error {
	var errs []error
	for _, e := range splitJoined(err) {
		errs = append(errs, fmt.Errorf("%s: %w", key, e))
	}
	return errors.Join(errs...)
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// usable reports whether some user has a hash for an offered algorithm.
func usable(users map[string]user, algs []*algorithm) bool {
	for _, u := range users {
		for _, alg := range algs {
			if u.ha1[alg.column] != "" {
				return true
			}
		}
	}
	return false
}

func names(algs []*algorithm) string {
	out := make([]string, len(algs))
	for i, alg := range algs {
		out[i] = alg.name
	}
	return strings.Join(out, " or ")
}

// outcome is what checking credentials found.
type outcome int

const (
	// accepted: the right password, a fresh nonce, a higher count.
	accepted outcome = iota
	// rejected: an unknown user, a wrong password, or unusable credentials.
	rejected
	// stale: the right password, but an expired, foreign or replayed nonce.
	stale
)

// ServeRequest lets a request with valid credentials for our realm go on,
// without them, and challenges any other. ACK and CANCEL go on unchecked:
// an ACK is never answered, and a CANCEL cannot be sent again with
// credentials (it must match its INVITE).
func (a *Auth) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	req := ctx.Request
	if req.IsAck() || req.IsCancel() {
		return pipeline.Continue, nil
	}
	name := "Proxy-Authorization"
	if req.Method == sip.REGISTER {
		name = "Authorization"
	}
	h, cred := a.find(req, name)
	if h == nil {
		return a.challenge(ctx, false), nil
	}
	switch a.check(cred, string(req.Method), ctx.Received) {
	case rejected:
		a.stats.Failures.Add(1)
		a.failures.Fail(ctx.Source.IP, ctx.Received)
		return a.challenge(ctx, false), nil
	case stale:
		a.stats.Stale.Add(1)
		return a.challenge(ctx, true), nil
	}
	user := cred.param("username")
	ctx.AuthUser = user
	if !forRequestURI(cred, &req.Recipient) {
		a.stats.WrongURI.Add(1)
		ctx.Reply(400, reasonWrongURI)
		return pipeline.Replied, nil
	}
	if req.Method == sip.REGISTER {
		// Only one's own AOR.
		if to := req.To(); to == nil || !a.isUser(ctx, &to.Address, user) {
			a.stats.Forbidden.Add(1)
			ctx.Reply(403, "Forbidden")
			return pipeline.Replied, nil
		}
	}
	if !a.ownFrom(ctx, user) {
		a.stats.Forbidden.Add(1)
		ctx.Reply(403, reasonWrongFrom)
		return pipeline.Replied, nil
	}
	removeHeader(req, h)
	a.stats.Accepted.Add(1)
	return pipeline.Continue, nil
}

// find returns the first header called name with Digest credentials for
// our realm, and the credentials; nil when there is none. Headers that do
// not parse are another realm's business, or nobody's.
func (a *Auth) find(req *sip.Request, name string) (sip.Header, credentials) {
	for _, h := range req.GetHeaders(name) {
		c, err := parseCredentials(h.Value())
		if err != nil || !strings.EqualFold(c.Scheme, "Digest") || c.param("realm") != a.Realm {
			continue
		}
		return h, c
	}
	return nil, credentials{}
}

// check checks credentials for our realm on a request with method,
// received at now. An unknown user costs the same work as a known one
// with a wrong password, and gets the same answer: the digest is computed
// with a random HA1. The nonce is checked only after the digest, so that
// stale=true is only said to a client that knows the password (RFC 7616
// 3.3), and a forged request cannot use up a nonce's counts.
func (a *Auth) check(c credentials, method string, now time.Time) outcome {
	username, nonce, uri := c.param("username"), c.param("nonce"), c.param("uri")
	nc, cnonce, qop, response := c.param("nc"), c.param("cnonce"), c.param("qop"), c.param("response")

	alg, algOK := a.algorithm(c.param("algorithm"))
	count, countOK := nonceCount(nc)
	wellFormed := algOK && countOK && username != "" && nonce != "" && uri != "" &&
		cnonce != "" && strings.EqualFold(qop, "auth") && len(response) == alg.hexLen

	ha1 := a.dummy[alg.column]
	u, known := a.users[username]
	if known && u.ha1[alg.column] != "" {
		ha1 = u.ha1[alg.column]
	} else {
		known = false
	}
	want := alg.response(ha1, nonce, nc, cnonce, qop, method, uri)
	match := subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(response))) == 1
	if !wellFormed || !known || !match {
		return rejected
	}
	if a.key.check(nonce, now, a.NonceTTL.D()) != nonceValid {
		return stale
	}
	if !a.nonces.counts.advance(nonce, count) {
		return stale
	}
	return accepted
}

// algorithm returns the algorithm credentials name ("" is MD5, RFC 7616
// 3.3) and whether it is offered. One that is not is still returned, or
// MD5, so that refusing it costs the same work.
func (a *Auth) algorithm(name string) (*algorithm, bool) {
	if name == "" {
		name = md5Digest.name
	}
	alg, ok := lookupAlgorithm(name)
	if !ok {
		return md5Digest, false
	}
	for _, o := range a.offered {
		if o == alg {
			return alg, true
		}
	}
	return alg, false
}

// nonceCount parses nc: eight hex digits, not zero.
func nonceCount(nc string) (uint32, bool) {
	if len(nc) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(nc, 16, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint32(n), true
}

// challenge answers the request with 401 (REGISTER) or 407 and one
// challenge per offered algorithm, most preferred first, all with one
// fresh nonce.
func (a *Auth) challenge(ctx *pipeline.Context, isStale bool) pipeline.Verdict {
	code, reason, name := 407, "Proxy Authentication Required", "Proxy-Authenticate"
	if ctx.Request.Method == sip.REGISTER {
		code, reason, name = 401, "Unauthorized", "WWW-Authenticate"
	}
	nonce := a.key.issue(ctx.Received)
	res := ctx.Reply(code, reason)
	for _, alg := range a.offered {
		v := "Digest realm=" + quote(a.Realm) + ", nonce=" + quote(nonce) + ", algorithm=" + alg.name + `, qop="auth"`
		if isStale {
			v += ", stale=true"
		}
		res.AppendHeader(sip.NewHeader(name, v))
	}
	a.stats.Challenges.Add(1)
	return pipeline.Replied
}

// removeHeader removes the header h itself from req. sipgo removes headers
// by name, the first of a name: every header of h's name is taken off, and
// the others put back in their order.
func removeHeader(req *sip.Request, h sip.Header) {
	same := req.GetHeaders(h.Name())
	for _, o := range same {
		req.RemoveHeader(o.Name())
	}
	for _, o := range same {
		if o != h {
			req.AppendHeader(o)
		}
	}
}
