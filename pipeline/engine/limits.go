package engine

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// held returns the transactions the engine holds: in flight, and those
// that were answered and linger. Both keep their messages in memory, so
// server.max_transactions bounds their sum.
func (e *Engine) held() int64 { return e.active.Load() + e.lingering.Load() }

// refusedTag starts the To tag of a refusal (refuse), so that its ACK,
// which comes after its transaction ended, is known and absorbed.
const refusedTag = "sb-refused-"

// refuse answers the request with res, a refusal past a limit, and ends
// its server transaction at once: kept, it would linger until the ACK or
// Timer H (32 s), and the refusals of a flood would hold the transactions
// the limit is there to spare, as Kamailio's stateless replies do. The ACK
// of an INVITE's refusal is known by its To tag and absorbed (refusedAck),
// and a retransmission of the request gets the same answer again
// (refusals), whatever the limits say by then.
func (t *transaction) refuse(res *sip.Response) {
	if to := res.To(); to != nil && t.req.IsInvite() && !inDialog(t.req) {
		// An in-dialog request keeps its dialog's tag (RFC 3261 8.2.6.2).
		to.Params.Add("tag", refusedTag+sip.GenerateTagN(10))
	}
	t.refused = true
	t.respond(res, true)
	t.e.refused.add(t.tx.Key(), res, time.Now())
	t.tx.Terminate()
}

// refusedAgain answers a retransmission of a request that refuse answered
// with the same response, stateless, and reports whether it did.
func (t *transaction) refusedAgain() bool {
	res := t.e.refused.find(t.tx.Key(), time.Now())
	if res == nil {
		return false
	}
	t.e.svc.Metrics.Message("out", string(t.req.Method), res.StatusCode)
	t.e.writeStateless(res.Clone())
	t.tx.Terminate()
	return true
}

// refusedAck reports whether req is the ACK of a refusal.
func refusedAck(req *sip.Request) bool {
	return req.IsAck() && strings.HasPrefix(pipeline.ToTag(req), refusedTag)
}

// inviteCounts counts INVITE transactions in flight by a key: a source
// address, or a called user.
type inviteCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// take counts one more transaction for key, unless limit are in flight.
func (c *inviteCounts) take(key string, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= limit {
		return false
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return true
}

// give counts one transaction less for key. An empty map is dropped, since
// a Go map keeps the room it grew to for a flood's many keys.
func (c *inviteCounts) give(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] > 1 {
		c.n[key]--
		return
	}
	delete(c.n, key)
	if len(c.n) == 0 {
		c.n = nil
	}
}

// admitSource counts a new INVITE against server.max_invites_per_source,
// or answers it 503 with Retry-After when its source has that many in
// flight. The sources of server.trusted_sources (a PBX, an SBC, a trunk)
// and re-INVITEs (session refreshes of calls already up) are not counted.
func (t *transaction) admitSource(ctx *pipeline.Context) bool {
	limit := t.p.Config.Server.MaxInvitesPerSource
	if !t.req.IsInvite() || limit <= 0 || !t.src.IP.IsValid() || inDialog(t.req) || t.e.trustedSource(t.src.IP) {
		return true
	}
	key := sourceKey(t.src.IP)
	if !t.e.bySource.take(key, limit) {
		t.log.Warn("too many INVITEs in flight from the source: refused", "limit", limit)
		res := ctx.Reply(503, "Service Unavailable: too many calls from your address")
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		t.refuse(res)
		return false
	}
	t.counted(&t.sourceKey, &t.e.bySource, key)
	return true
}

// admitCallee counts a new INVITE against server.max_invites_per_callee,
// or answers it 486 when its called user has that many in flight.
func (t *transaction) admitCallee(ctx *pipeline.Context) bool {
	limit := t.p.Config.Server.MaxInvitesPerCallee
	if !t.req.IsInvite() || limit <= 0 || inDialog(ctx.Request) {
		return true
	}
	key := calleeKey(ctx)
	if key == "" {
		return true
	}
	if !t.e.byCallee.take(key, limit) {
		t.log.Warn("too many INVITEs in flight to the called user: refused", "limit", limit, "callee", key)
		t.refuse(sip.NewResponseFromRequest(t.req, 486, "Busy Here", nil))
		return false
	}
	t.counted(&t.calleeKey, &t.e.byCallee, key)
	return true
}

// counted remembers in field the key taken from c, to give it back when
// the transaction settles; if it settled already (a CANCEL answered it
// meanwhile), it is given back at once.
func (t *transaction) counted(field *string, c *inviteCounts, key string) {
	t.mu.Lock()
	released := t.limitsReleased
	if !released {
		*field = key
	}
	t.mu.Unlock()
	if released {
		c.give(key)
	}
}

// releaseLimits gives back what admitSource and admitCallee counted.
func (t *transaction) releaseLimits() {
	t.mu.Lock()
	source, callee := t.sourceKey, t.calleeKey
	t.sourceKey, t.calleeKey, t.limitsReleased = "", "", true
	t.mu.Unlock()
	if source != "" {
		t.e.bySource.give(source)
	}
	if callee != "" {
		t.e.byCallee.give(callee)
	}
}

// sourceKey is what max_invites_per_source counts by: the IPv4 address,
// or the /64 of an IPv6 one (a host's interface identifier is its own to
// choose).
func sourceKey(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// calleeKey is what max_invites_per_callee counts by: the address-of-record
// of the Request-URI, or of the To URI when the Request-URI has no user.
func calleeKey(ctx *pipeline.Context) string {
	u := &ctx.Request.Recipient
	if u.User == "" {
		if to := ctx.Request.To(); to != nil {
			u = &to.Address
		}
	}
	if u.User == "" {
		return ""
	}
	return ctx.AOR(u)
}
