// Package registrar is the registrar stage: it answers REGISTER requests
// for our domains as RFC 3261 section 10.3 asks, and keeps the bindings in
// the location store that the location stage reads.
package registrar

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "registrar",
		Description: "answers REGISTER for our domains (RFC 3261 10.3) and keeps the bindings in the location store",
		New:         func() pipeline.Stage { return New() },
	})
}

// Defaults of the stage's keys.
const (
	DefaultExpires     = 3600 * time.Second
	DefaultMinExpires  = 60 * time.Second
	DefaultMaxExpires  = 86400 * time.Second
	DefaultMaxContacts = 10
	// DefaultMaxAORs keeps a flood of REGISTERs for made-up users from
	// growing the location store without end: 10^6 AORs of one binding
	// take about 405 MiB of heap in a Memory store (425 B each, see
	// docs/benchmarks.md), ten times that if each holds max_contacts
	// (10) bindings. A deployment with more users sets its own.
	DefaultMaxAORs = 1_000_000
)

// fullRetryAfter is the Retry-After, in seconds, of the 503 that refuses
// a new AOR when the location store is full: room comes back only as
// registrations lapse or are removed, so there is no point in retrying
// sooner.
const fullRetryAfter = 300

// dateFormat is the SIP-date of RFC 3261 section 20.17 (RFC 1123, in GMT).
const dateFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// supported are the option tags the registrar understands in Require.
var supported = []string{"path", outboundTag}

// headerParser parses header lines as sipgo's message parser does.
var headerParser = sip.HeadersParser(sip.DefaultHeadersParser())

// errOutOfOrder aborts an update whose CSeq is not higher than the one a
// binding was written with by the same Call-ID (RFC 3261 10.3 step 7).
var errOutOfOrder = errors.New("CSeq out of order")

// errFull aborts an update that would add an AOR to a location store
// that holds MaxAORs AORs already.
var errFull = errors.New("location store full")

// Registrar is the registrar stage.
type Registrar struct {
	// DefaultExpires is the lifetime of a binding whose REGISTER gives none.
	DefaultExpires config.Duration `toml:"default_expires"`
	// MinExpires is the shortest lifetime accepted; a shorter one (other
	// than 0, which removes) gets 423 Interval Too Brief.
	MinExpires config.Duration `toml:"min_expires"`
	// MaxExpires is the longest lifetime granted; longer ones are cut to it.
	MaxExpires config.Duration `toml:"max_expires"`
	// MaxContacts is how many bindings an AOR keeps; past it the binding
	// written longest ago is dropped.
	MaxContacts int `toml:"max_contacts"`
	// MaxAORs is how many AORs with bindings the location store may hold
	// (0: no limit); past it, a REGISTER that would add an AOR gets 503,
	// while the AORs already there register, refresh and unregister as
	// usual.
	MaxAORs int `toml:"max_aors"`
	// Path records this instance in the Path (RFC 3327) of bindings made
	// over TCP, TLS or WebSocket, and of UDP bindings from behind NAT, so
	// that the other instances sharing the location store (Redis) reach
	// such a phone through the instance that holds its connection or NAT
	// mapping. Turn it on when several instances share a store.
	Path bool `toml:"path"`
	// Keepalive is the time between the OPTIONS pings sent to a binding
	// behind NAT (registered over UDP from another address than its
	// Contact or Via names), which keep the NAT's mapping open; 0 sends
	// none.
	Keepalive config.Duration `toml:"keepalive"`
	// KeepaliveTimeout is how long such a binding may leave its pings
	// unanswered, without registering again, before it is removed.
	KeepaliveTimeout config.Duration `toml:"keepalive_timeout"`
	// NAT reaches a UDP binding whose REGISTER came from behind NAT
	// (pipeline.DetectNAT) at the address it came from rather than at its
	// Contact. Off, for a proxy that serves only phones on its own
	// network, every UDP binding is reached at its Contact. A binding
	// over TCP, TLS or WebSocket is reached over its connection either
	// way.
	NAT bool `toml:"nat"`

	store location.Store
	log   *slog.Logger
	// node is this node's ID (pipeline.Services.NodeID); withdraw takes
	// back the restorer offered to the keepalive pinger.
	node     string
	withdraw func()
}

var (
	_ pipeline.RequestStage = (*Registrar)(nil)
	_ pipeline.ReadOnly     = (*Registrar)(nil)
	_ pipeline.Provisioner  = (*Registrar)(nil)
	_ pipeline.Validator    = (*Registrar)(nil)
	_ pipeline.CleanerUpper = (*Registrar)(nil)
)

// New returns a Registrar with the default settings.
func New() *Registrar {
	return &Registrar{
		DefaultExpires: config.Duration(DefaultExpires),
		MinExpires:     config.Duration(DefaultMinExpires),
		MaxExpires:     config.Duration(DefaultMaxExpires),
		MaxContacts:    DefaultMaxContacts,
		MaxAORs:        DefaultMaxAORs,

		Keepalive:        config.Duration(DefaultKeepalive),
		KeepaliveTimeout: config.Duration(DefaultKeepaliveTimeout),
		NAT:              true,
	}
}

// Provision borrows the location store, and offers the keepalive pinger
// the registrar's settings for the bindings it pings after a restart.
func (r *Registrar) Provision(b *pipeline.BuildContext) error {
	if b.Services == nil || b.Services.Location == nil {
		return errors.New("no location store: the registrar needs the services' location store")
	}
	r.store = b.Services.Location
	r.log = b.Log
	r.node = b.Services.NodeID
	if pinger := b.Services.Keepalive; pinger != nil && r.Keepalive > 0 && !b.Services.Checking {
		r.withdraw = pinger.Restore(r.restoreFlow)
	}
	return nil
}

// Cleanup takes back what Provision offered the keepalive pinger.
func (r *Registrar) Cleanup() error {
	if r.withdraw != nil {
		r.withdraw()
		r.withdraw = nil
	}
	return nil
}

// Validate checks that the settings are whole seconds and consistent.
func (r *Registrar) Validate() error {
	var problems []string
	for _, d := range []struct {
		key string
		val config.Duration
	}{
		{"default_expires", r.DefaultExpires},
		{"min_expires", r.MinExpires},
		{"max_expires", r.MaxExpires},
	} {
		if d.val.D()%time.Second != 0 {
			problems = append(problems, fmt.Sprintf("%s: %q is not a whole number of seconds", d.key, d.val))
		}
	}
	switch {
	case r.MaxExpires < config.Duration(time.Second):
		problems = append(problems, fmt.Sprintf("max_expires: %q is too short: a binding must last at least 1s", r.MaxExpires))
	case r.MinExpires > r.MaxExpires:
		problems = append(problems, fmt.Sprintf("min_expires: %q is longer than max_expires %q", r.MinExpires, r.MaxExpires))
	case r.DefaultExpires < r.MinExpires || r.DefaultExpires > r.MaxExpires || r.DefaultExpires < config.Duration(time.Second):
		problems = append(problems, fmt.Sprintf("default_expires: %q is not between min_expires %q and max_expires %q (and at least 1s)", r.DefaultExpires, r.MinExpires, r.MaxExpires))
	}
	if r.MaxContacts < 1 {
		problems = append(problems, fmt.Sprintf("max_contacts: %d is not a positive number", r.MaxContacts))
	}
	if r.MaxAORs < 0 {
		problems = append(problems, fmt.Sprintf("max_aors: %d is negative (0 is no limit)", r.MaxAORs))
	}
	switch {
	case r.Keepalive != 0 && r.Keepalive.D() < minKeepalive:
		problems = append(problems, fmt.Sprintf("keepalive: %q is too short: at least %s, or 0 to send no pings", r.Keepalive, minKeepalive))
	case r.Keepalive != 0 && r.KeepaliveTimeout <= r.Keepalive:
		problems = append(problems, fmt.Sprintf("keepalive_timeout: %q is not longer than keepalive %q: a binding would go before its first ping", r.KeepaliveTimeout, r.Keepalive))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// contact is one Contact of a REGISTER, checked.
type contact struct {
	uri sip.Uri
	// params are the header parameters other than expires, as written.
	params string
	// instance is +sip.instance, unquoted.
	instance string
	// regID is the reg-id of an RFC 5626 flow: kept only with an instance,
	// from an edge proxy that does outbound (outboundEdge).
	regID string
	// expires is the granted lifetime; 0 removes the binding.
	expires time.Duration
}

// refusal is a final answer other than 200.
type refusal struct {
	code    int
	reason  string
	headers []sip.Header
}

func refuse(code int, reason string, headers ...sip.Header) *refusal {
	return &refusal{code: code, reason: reason, headers: headers}
}

// registration is a REGISTER, checked.
type registration struct {
	aor      string
	callID   string
	cseq     uint32
	wildcard bool
	// contacts is empty for a query.
	contacts []contact
	path     []string
	// nat is true when the REGISTER came from behind NAT and the stage's
	// NAT is on: its bindings are reached at the address it came from.
	nat bool
	// node and local, for a REGISTER over UDP from behind NAT, are this
	// node's ID and the socket it came in on: where its bindings are held
	// (location.Binding.Node).
	node, local string
	// userAgent is the REGISTER's User-Agent, cut to
	// location.MaxUserAgent bytes.
	userAgent string
}

// ServeRequest answers REGISTER requests for our domains; every other
// request, and REGISTER for other domains, goes on to the next stage.
func (r *Registrar) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	req := ctx.Request
	if req.Method != sip.REGISTER {
		return pipeline.Continue, nil
	}
	to := req.To()
	if !ctx.IsOurs(&req.Recipient) && (to == nil || !ctx.IsOurs(&to.Address)) {
		return pipeline.Continue, nil
	}
	now := ctx.Received
	if now.IsZero() {
		now = time.Now()
	}
	reg, no := r.check(ctx)
	if no != nil {
		res := ctx.Reply(no.code, no.reason)
		for _, h := range no.headers {
			res.AppendHeader(h)
		}
		return pipeline.Replied, nil
	}
	store := r.store
	if store == nil {
		return pipeline.Continue, errors.New("not provisioned: no location store")
	}

	var bindings []location.Binding
	var err error
	echo := reg.path // the Path the REGISTER brought, without ours
	if len(reg.contacts) == 0 && !reg.wildcard {
		bindings, _, err = store.Lookup(reg.aor, now)
	} else {
		received := ""
		if ctx.Source.IP.IsValid() {
			received = ctx.Source.String()
		}
		reg.nat = r.NAT && pipeline.DetectNAT(req, ctx.Source, ctx.Transport).Behind
		if reg.nat && strings.EqualFold(ctx.Transport, "UDP") {
			reg.node = r.node
			if l := localSocket(req); l.IsValid() {
				reg.local = l.String()
			}
		}
		if r.Path && (overConnection(ctx.Transport) || reg.nat) {
			reg.path = append([]string{ownPath(ctx)}, reg.path...)
		}
		var full bool
		full, err = r.full(store, reg, now)
		if err != nil {
			return pipeline.Continue, err
		}
		bindings, err = store.Update(reg.aor, now, func(current []location.Binding) ([]location.Binding, error) {
			next, err := r.apply(reg, current, now, received, ctx.Transport)
			if err == nil && full && len(current) == 0 && len(next) > 0 {
				return nil, errFull
			}
			return next, err
		})
	}
	switch {
	case errors.Is(err, errOutOfOrder):
		ctx.Reply(sip.StatusInternalServerError, "Server Internal Error: CSeq out of order")
		return pipeline.Replied, nil
	case errors.Is(err, errFull):
		res := ctx.Reply(sip.StatusServiceUnavailable, "Service Unavailable: location store full")
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(fullRetryAfter)))
		return pipeline.Replied, nil
	}
	if err != nil {
		return pipeline.Continue, fmt.Errorf("bindings of %q: %w", reg.aor, err)
	}
	if len(reg.contacts) > 0 || reg.wildcard {
		r.syncKeepalive(ctx, reg, bindings, now)
	}

	res := ctx.Reply(sip.StatusOK, "OK")
	for _, b := range bindings {
		res.AppendHeader(contactHeader(b, now))
	}
	if len(echo) > 0 && hasOption(req, "Supported", "k", "path") {
		for _, p := range echo {
			res.AppendHeader(sip.NewHeader("Path", p))
		}
	}
	if reg.outbound() {
		res.AppendHeader(sip.NewHeader("Require", outboundTag))
		res.AppendHeader(sip.NewHeader("Supported", outboundTag))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(dateFormat)))
	return pipeline.Replied, nil
}

// uriChars are the characters a SIP URI may hold (RFC 3261 25.1): the
// unreserved and reserved marks, escapes, and the brackets of an IPv6
// reference.
const uriChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()%;/?:@&=+$,[]"

// validContact reports whether a Contact URI is one the registrar can store
// and write back: sipgo's parser accepts some that are not URIs (a host
// "*", a ">" in the user part), and written back in <> they would read as
// something else (Contact: *).
func validContact(u *sip.Uri) bool {
	if u.Wildcard || strings.ContainsAny(u.Host, "*") {
		return false
	}
	for _, c := range u.String() {
		if !strings.ContainsRune(uriChars, c) {
			return false
		}
	}
	return true
}

// overConnection reports whether a phone registering over transport is
// reached only over its connection: TCP, TLS, WS or WSS.
func overConnection(transport string) bool {
	switch strings.ToUpper(transport) {
	case "TCP", "TLS", "WS", "WSS":
		return true
	}
	return false
}

// ownPath is the Path entry that names this instance: its advertised
// address for TCP, loose-routing.
func ownPath(ctx *pipeline.Context) string {
	host, port := ctx.Pipeline().Advertised("TCP")
	u := sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", "tcp")
	u.UriParams.Add("lr", "")
	return "<" + u.String() + ">"
}

// check reads the REGISTER of ctx, or says why it is refused (RFC 3261
// 10.3 steps 2, 3 and 6).
func (r *Registrar) check(ctx *pipeline.Context) (*registration, *refusal) {
	req := ctx.Request
	to, callID, cseq := req.To(), req.CallID(), req.CSeq()
	switch {
	case to == nil:
		return nil, refuse(sip.StatusBadRequest, "Bad Request: missing To")
	case callID == nil:
		return nil, refuse(sip.StatusBadRequest, "Bad Request: missing Call-ID")
	case cseq == nil:
		return nil, refuse(sip.StatusBadRequest, "Bad Request: missing CSeq")
	}
	if unknown := unsupported(req); len(unknown) > 0 {
		return nil, refuse(sip.StatusBadExtension, "Bad Extension", sip.NewHeader("Unsupported", strings.Join(unknown, ", ")))
	}
	if s := strings.ToLower(to.Address.Scheme); (s != "sip" && s != "sips") || to.Address.User == "" {
		return nil, refuse(sip.StatusNotFound, "Not Found: the To URI is not a user's address-of-record")
	}
	reg := &registration{aor: ctx.AOR(&to.Address), callID: callID.Value(), cseq: cseq.SeqNo, userAgent: userAgent(req)}

	headers, err := contactHeaders(req)
	if err != nil {
		return nil, refuse(sip.StatusBadRequest, "Bad Request: malformed Contact header")
	}
	headerExpires, hasExpires := uint64(0), false
	if h := req.GetHeader("Expires"); h != nil {
		v, ok := deltaSeconds(h.Value())
		if !ok {
			return nil, refuse(sip.StatusBadRequest, "Bad Request: malformed Expires header")
		}
		headerExpires, hasExpires = v, true
	}
	for _, h := range headers {
		if h.Address.Wildcard {
			reg.wildcard = true
		}
	}
	if reg.wildcard {
		switch {
		case len(headers) > 1:
			return nil, refuse(sip.StatusBadRequest, "Bad Request: Contact * must be the only Contact")
		case !hasExpires || headerExpires != 0:
			return nil, refuse(sip.StatusBadRequest, "Bad Request: Contact * needs Expires: 0")
		}
		return reg, nil
	}

	for _, h := range req.GetHeaders("Path") {
		reg.path = append(reg.path, splitList(h.Value())...)
	}
	edge := outboundEdge(req, reg.path)
	minSecs := uint64(r.MinExpires.D() / time.Second)
	maxSecs := uint64(r.MaxExpires.D() / time.Second)
	for _, h := range headers {
		if s := strings.ToLower(h.Address.Scheme); (s != "sip" && s != "sips") || h.Address.Host == "" {
			return nil, refuse(sip.StatusBadRequest, "Bad Request: Contact is not a sip or sips URI with a host")
		}
		if !validContact(&h.Address) {
			return nil, refuse(sip.StatusBadRequest, "Bad Request: Contact is not a valid URI")
		}
		secs := uint64(r.DefaultExpires.D() / time.Second)
		if hasExpires {
			secs = headerExpires
		}
		c := contact{uri: *h.Address.Clone()}
		var params sip.HeaderParams
		for _, kv := range h.Params {
			if !validParam(kv.K, kv.V) {
				return nil, refuse(sip.StatusBadRequest, "Bad Request: malformed parameter in Contact")
			}
			switch strings.ToLower(kv.K) {
			case "expires":
				v, ok := deltaSeconds(kv.V)
				if !ok {
					return nil, refuse(sip.StatusBadRequest, "Bad Request: malformed expires parameter in Contact")
				}
				secs = v
				continue
			case "+sip.instance":
				c.instance = unquote(kv.V)
			case "reg-id":
				if !validRegID(kv.V) {
					return nil, refuse(sip.StatusBadRequest, "Bad Request: malformed reg-id parameter in Contact")
				}
				c.regID = kv.V
			}
			params = append(params, kv)
		}
		if c.regID != "" && (c.instance == "" || !edge) {
			// Not a flow this registrar can use (RFC 5626 section 6):
			// bound as a plain contact, without its reg-id.
			c.regID = ""
			params = slices.DeleteFunc(params, func(kv sip.HeaderKV) bool { return strings.EqualFold(kv.K, "reg-id") })
		}
		c.params = params.ToString(';')
		if secs != 0 && secs < minSecs {
			return nil, refuse(sip.StatusIntervalToBrief, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.FormatUint(minSecs, 10)))
		}
		c.expires = time.Duration(min(secs, maxSecs)) * time.Second
		reg.contacts = append(reg.contacts, c)
	}
	return reg, nil
}

// full reports whether the location store is full for reg: reg adds
// bindings, and the store holds MaxAORs AORs or more, so that reg may
// refresh or add bindings of an AOR that has some, but not bind a new one.
// The count is read before the Update that the answer guards, so
// REGISTERs of new AORs that run at once may all pass at MaxAORs-1: the
// store may hold a few more AORs than MaxAORs, as many as such REGISTERs
// were in flight (on every instance sharing the store).
func (r *Registrar) full(store location.Store, reg *registration, now time.Time) (bool, error) {
	if r.MaxAORs == 0 || !reg.adds() {
		return false, nil
	}
	n, err := store.AORs(now)
	if err != nil {
		return false, fmt.Errorf("counting the AORs of the location store: %w", err)
	}
	return n >= r.MaxAORs, nil
}

// adds reports whether reg may add bindings: it has a contact with a
// lifetime.
func (reg *registration) adds() bool {
	for _, c := range reg.contacts {
		if c.expires > 0 {
			return true
		}
	}
	return false
}

// apply returns the bindings of an AOR after reg, given the current ones
// (RFC 3261 10.3 steps 7 and 8). A contact replaces the bindings with the
// same URI or the same +sip.instance; expires 0 removes them. Past
// MaxContacts the bindings written longest ago are dropped.
func (r *Registrar) apply(reg *registration, current []location.Binding, now time.Time, received, transport string) ([]location.Binding, error) {
	if reg.wildcard {
		for _, b := range current {
			if b.CallID == reg.callID && reg.cseq <= b.CSeq {
				return nil, errOutOfOrder
			}
		}
		return nil, nil
	}
	for _, c := range reg.contacts {
		for _, b := range current {
			if c.matches(b) && b.CallID == reg.callID && reg.cseq <= b.CSeq {
				return nil, errOutOfOrder
			}
		}
	}
	next := current
	for _, c := range reg.contacts {
		bound := false
		kept := make([]location.Binding, 0, len(next)+1)
		for _, b := range next {
			switch {
			case !c.matches(b):
				kept = append(kept, b)
			case c.expires > 0 && !bound:
				// The binding keeps its place; a second match is a
				// duplicate and goes.
				kept = append(kept, r.bind(reg, c, now, received, transport))
				bound = true
			}
		}
		if c.expires > 0 && !bound {
			kept = append(kept, r.bind(reg, c, now, received, transport))
		}
		next = kept
	}
	return evict(next, r.MaxContacts), nil
}

// bind returns the binding that contact c of reg makes.
func (r *Registrar) bind(reg *registration, c contact, now time.Time, received, transport string) location.Binding {
	return location.Binding{
		AOR:       reg.aor,
		Contact:   c.uri.String(),
		Params:    c.params,
		Instance:  c.instance,
		CallID:    reg.callID,
		CSeq:      reg.cseq,
		Expires:   now.Add(c.expires),
		Received:  received,
		Transport: transport,
		NAT:       reg.nat,
		Node:      reg.node,
		Local:     reg.local,
		UserAgent: reg.userAgent,
		Path:      slices.Clone(reg.path),
		Updated:   now,
	}
}

// userAgent returns req's User-Agent header, cut to location.MaxUserAgent
// bytes at a character boundary, or "".
func userAgent(req *sip.Request) string {
	h := req.GetHeader("User-Agent")
	if h == nil {
		return ""
	}
	ua := strings.TrimSpace(h.Value())
	if len(ua) <= location.MaxUserAgent {
		return ua
	}
	cut := location.MaxUserAgent
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}

// evict drops the bindings written longest ago until at most max remain;
// among bindings written at the same time, the earlier in the list goes
// first. The others keep their order.
func evict(bs []location.Binding, max int) []location.Binding {
	if len(bs) <= max {
		return bs
	}
	order := make([]int, len(bs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return bs[a].Updated.Compare(bs[b].Updated) })
	drop := make(map[int]bool, len(bs)-max)
	for _, i := range order[:len(bs)-max] {
		drop[i] = true
	}
	out := make([]location.Binding, 0, max)
	for i, b := range bs {
		if !drop[i] {
			out = append(out, b)
		}
	}
	return out
}

// matches reports whether c names binding b: for a flow, the same
// +sip.instance and reg-id (RFC 5626 section 6: one binding per flow);
// otherwise the same +sip.instance, or an equivalent URI.
func (c contact) matches(b location.Binding) bool {
	if c.regID != "" {
		return strings.EqualFold(c.instance, b.Instance) && c.regID == b.RegID()
	}
	if c.instance != "" && strings.EqualFold(c.instance, b.Instance) {
		return true
	}
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil {
		return c.uri.String() == b.Contact
	}
	return pipeline.SameURI(&c.uri, &u)
}

// contactHeader returns the Contact of b for the 200: its URI and
// parameters with ;expires= the seconds it has left, without the GRUU
// parameters the registrar does not implement. A flow keeps its reg-id
// (RFC 5626 section 6).
func contactHeader(b location.Binding, now time.Time) sip.Header {
	left := b.Expires.Sub(now)
	secs := strconv.FormatInt(int64((left+time.Second-1)/time.Second), 10)
	value := "<" + b.Contact + ">"
	if b.Params != "" {
		value += ";" + b.Params
	}
	hs, err := headerParser.ParseHeader(nil, []byte("Contact: "+value))
	if err != nil || len(hs) != 1 {
		return sip.NewHeader("Contact", value+";expires="+secs)
	}
	h, ok := hs[0].(*sip.ContactHeader)
	if !ok {
		return sip.NewHeader("Contact", value+";expires="+secs)
	}
	params := make(sip.HeaderParams, 0, len(h.Params)+1)
	for _, kv := range h.Params {
		switch strings.ToLower(kv.K) {
		case "expires", "pub-gruu", "temp-gruu":
			continue
		}
		params = append(params, kv)
	}
	h.Params = append(params, sip.HeaderKV{K: "expires", V: secs})
	return h
}

// contactHeaders returns the Contacts of req, one per value, whether they
// came as one header with commas or as several headers.
func contactHeaders(req *sip.Request) ([]*sip.ContactHeader, error) {
	var out []*sip.ContactHeader
	for _, h := range req.Headers() {
		name := h.Name()
		if !strings.EqualFold(name, "Contact") && !strings.EqualFold(name, "m") {
			continue
		}
		if c, ok := h.(*sip.ContactHeader); ok {
			out = append(out, c)
			continue
		}
		parsed, err := headerParser.ParseHeader(nil, []byte("Contact: "+h.Value()))
		if err != nil {
			return nil, err
		}
		for _, p := range parsed {
			c, ok := p.(*sip.ContactHeader)
			if !ok {
				return nil, fmt.Errorf("contact %q did not parse as a Contact", h.Value())
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// deltaSeconds parses the delta-seconds of Expires (RFC 3261 20.19): a
// value too large for 32 bits counts as 2**32-1.
func deltaSeconds(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > math.MaxUint32 {
		return math.MaxUint32, true
	}
	return v, true
}

// unsupported returns the option tags of req's Require headers that the
// registrar does not understand (RFC 3261 8.2.2.3).
func unsupported(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.TrimSpace(tag)
			if tag != "" && !slices.Contains(supported, strings.ToLower(tag)) {
				out = append(out, tag)
			}
		}
	}
	return out
}

// hasOption reports whether a header of req named name (or its compact
// form) lists the option tag.
func hasOption(req *sip.Request, name, compact, tag string) bool {
	for _, h := range req.Headers() {
		if !strings.EqualFold(h.Name(), name) && !strings.EqualFold(h.Name(), compact) {
			continue
		}
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// splitList splits a header value at the commas between its entries,
// keeping commas inside <> and quotes.
func splitList(s string) []string {
	var out []string
	inAngle, inQuote, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '<':
			inAngle = true
		case c == '>':
			inAngle = false
		case c == ',' && !inAngle:
			if v := strings.TrimSpace(s[start:i]); v != "" {
				out = append(out, v)
			}
			start = i + 1
		}
	}
	if v := strings.TrimSpace(s[start:]); v != "" {
		out = append(out, v)
	}
	return out
}

// unquote removes the double quotes around a parameter value.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// ReadOnly reports that the stage changes nothing a rule reads (it answers,
// or sets what the engine does next), so rules after it reuse the fields
// already built.
func (*Registrar) ReadOnly() bool { return true }
