package engine

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// handOver is sipgo's transaction layer handing over a new request, on a
// goroutine of its own: the request enters its turn (callOrder), which
// knows its transaction's key until the transaction ends, and runs on a
// worker.
// A retransmission of a request whose transaction sipgo no longer keeps
// is absorbed here (completed); the turn it was given on arrival ends at
// once.
func (e *Engine) handOver(req *sip.Request, tx *sip.ServerTx) {
	if req.IsCancel() {
		// A CANCEL the read filter left to sipgo (over a stream, read
		// behind its INVITE; in a datagram it did not recognise) for
		// which sipgo found no INVITE transaction yet: it is matched as
		// the read filter's are, once its INVITE is served.
		e.workers.run(func() {
			defer tx.Terminate()
			// A datagram the read filter marked (markRFC2543) gets its
			// Via back, as onRequest gives a request's, once its INVITE's
			// turn, kept under the marked Via, was waited for.
			e.calls.awaitInvite(req)
			restoreVia(req)
			var local net.Addr // a UDP CANCEL's 481 goes from the socket that read it
			if c := tx.Connection(); c != nil && !sip.IsReliable(req.Transport()) {
				local = c.LocalAddr()
			}
			e.onCancel(req, local)
		})
		return
	}
	var turn *turn
	key, hashed := e.calls.txKey(req) // before onRequest restores the Via
	if hashed {
		turn = e.calls.enter(req, key)
		if !tx.OnTerminate(func(string, error) { e.calls.ended(req, key) }) {
			e.calls.ended(req, key)
		}
		if e.absorbed(req, tx, key) {
			e.calls.end(turn)
			return
		}
	}
	e.workers.run(func() { e.onRequest(req, tx, turn, key, hashed) })
}

// onRequest is sipgo's transaction layer handing over a new request with
// its server transaction. A non-2xx ACK never arrives here: the INVITE's
// server transaction absorbs it (it is hop-by-hop).
func (e *Engine) onRequest(req *sip.Request, tx *sip.ServerTx, turn *turn, key uint64, hashed bool) {
	defer e.calls.end(turn)
	now := time.Now()
	if turn != nil {
		e.overload.scheduled(now.Sub(turn.arrived), now)
	}
	mark := restoreVia(req)
	p := e.holdCurrent()
	if p == nil {
		tx.Terminate()
		return
	}
	e.active.Add(1)
	e.svc.Metrics.Message("in", string(req.Method), 0)
	t := &transaction{e: e, p: p, req: req, tx: tx, turn: turn, src: sourceOf(req), transport: strings.ToUpper(req.Transport()), start: now, keyHash: key, hashed: hashed}
	if req.IsInvite() {
		t.mark2543 = mark
	}
	t.logAttrs = txLogHandler{inner: e.log.Handler(), req: req}
	t.logger = *slog.New(&t.logAttrs)
	t.log = &t.logger
	// One reference for the server transaction, one for serve: the
	// transaction cannot end before its branches are counted.
	t.refs.Store(2)
	if !tx.OnTerminate(func(string, error) { t.unref() }) {
		t.unref()
	}
	t.serve()
	t.mu.Lock()
	t.served = true
	t.shedIfDone()
	t.mu.Unlock()
	t.unref()
}

// serve runs the request through route processing and the request stages.
func (t *transaction) serve() {
	req := t.req
	if !req.IsAck() && t.refusedAgain() {
		return
	}
	if t.shedIfOverloaded() {
		return
	}
	if req.IsInvite() {
		t.key = inviteKey(req)
		t.e.invites.Store(t.key, t)
		t.e.calls.matched(t.turn)
		tx := t.tx
		if !tx.OnCancel(func(cancel *sip.Request) { t.cancel(cancel, false) }) && errors.Is(tx.Err(), sip.ErrTransactionCanceled) {
			// sipgo answered a CANCEL (200 and 487) before the hook was
			// set: the INVITE goes no further, not even to the stages.
			t.cancel(req, false)
			return
		}
		// 100 Trying at once, through the response stages, so that sipgo's
		// own timer never sends one of its own.
		t.respond(sip.NewResponseFromRequest(req, 100, "Trying", nil), true)
	}
	if req.IsAck() {
		defer t.tx.Terminate()
		if refusedAck(req) {
			return // hop by hop, for a transaction refuse ended
		}
	}

	work := req.Clone()
	work.SetSource(req.Source())
	work.SetTransport(req.Transport())
	ctx := pipeline.NewContext(t.p, work, t.src, t.transport)
	ctx.Log = t.log
	if work.IsInvite() && !inDialog(work) {
		ctx.Attempts = &pipeline.Attempts{}
	}
	t.ctx = ctx
	t.processRoute(ctx)
	t.loopHash = pipeline.LoopHash(work)

	// The limits first: a request refused for them costs no look-up in
	// the dialog store.
	if limit := t.p.Config.Server.MaxTransactions; limit > 0 && t.e.held() > int64(limit) && !req.IsAck() {
		t.log.Warn("too many transactions held: refused", "limit", limit)
		res := ctx.Reply(503, "Service Unavailable: overloaded")
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		t.refuse(res)
		return
	}
	if !t.admitSource(ctx) {
		return
	}
	// From here on a request sees its call as the call's earlier
	// messages left it: the dialog a 200 just before it recorded, a call
	// log's view of the ACK just before a BYE. What it decides leaves in
	// order too.
	t.e.calls.await(t.turn)
	if ctx.SignedRoute && inDialog(req) && !t.checkDialog(ctx) {
		return
	}
	if t.e.draining.Load() && opensDialog(req) {
		res := ctx.Reply(503, "Service Unavailable")
		res.AppendHeader(sip.NewHeader("Retry-After", "5"))
		t.respond(res, true)
		return
	}
	if req.Method == sip.OPTIONS && !ctx.Routed && pipeline.TopRoute(work) == nil && work.Recipient.User == "" && ctx.IsOurs(&work.Recipient) {
		res := ctx.Reply(200, "OK")
		res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, UPDATE, PRACK"))
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		t.respond(res, true)
		return
	}

	trace, traced := t.stageTrace(ctx)
	t.traced = traced
	verdict, err := t.p.ServeRequest(ctx, trace)
	t.mu.Lock()
	t.authUser = ctx.AuthUser
	t.mu.Unlock()
	if err != nil {
		t.log.Error("stage failed", "error", err)
		if req.IsAck() {
			return
		}
		if errors.Is(err, location.ErrUnavailable) {
			// Better no answer than a wrong one: the phone retries.
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			t.respond(res, true)
			return
		}
		t.respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil), true)
		return
	}
	switch verdict {
	case pipeline.Replied:
		if req.IsAck() {
			return // an ACK is never answered
		}
		t.respond(ctx.Response(), true)
	case pipeline.Dropped:
		if !req.IsAck() {
			t.tx.Terminate()
		}
	case pipeline.Forwarded:
		t.forward(ctx)
	default:
		t.noDecision(ctx)
	}
}

// noDecision answers a request that every stage let through.
func (t *transaction) noDecision(ctx *pipeline.Context) {
	if t.req.IsAck() {
		return
	}
	if !ctx.IsOurs(&ctx.Request.Recipient) && !ctx.Routed {
		t.respond(sip.NewResponseFromRequest(t.req, 403, "Forbidden: Relaying Denied", nil), true)
		return
	}
	t.respond(sip.NewResponseFromRequest(t.req, 404, "Not Found", nil), true)
}

// processRoute is RFC 3261 16.4: a Request-URI we put in a Record-Route
// (a strict router upstream) is replaced by the last Route; our own Route
// entries on top are removed.
func (t *transaction) processRoute(ctx *pipeline.Context) {
	req := ctx.Request
	routes := routeSet(req)
	key := t.p.Services.DialogKey
	signed := func(u *sip.Uri) bool {
		token, _ := u.UriParams.Get(pipeline.DialogParam)
		return pipeline.DialogSigned(key, req, token)
	}
	var ours []*sip.Uri
	if len(routes) > 0 && req.Recipient.User == "" && req.Recipient.UriParams.Has("lr") && ctx.IsOurs(&req.Recipient) {
		if signed(&req.Recipient) {
			ctx.SignedRoute = true
		}
		ours = append(ours, req.Recipient.Clone())
		last := routes[len(routes)-1]
		req.Recipient = *last.Address.Clone()
		routes = routes[:len(routes)-1]
		ctx.Routed = true
	}
	for len(routes) > 0 && ctx.IsOurs(&routes[0].Address) {
		if signed(&routes[0].Address) {
			ctx.SignedRoute = true
		}
		ours = append(ours, &routes[0].Address)
		routes = routes[1:]
		ctx.Routed = true
	}
	setRouteSet(req, routes)
	if ctx.SignedRoute {
		t.flow = t.routeFlow(req, ours)
	}
}

// routeSet returns the Route entries of req, top first.
func routeSet(req *sip.Request) []*sip.RouteHeader {
	var out []*sip.RouteHeader
	for _, h := range req.GetHeaders("Route") {
		if r, ok := h.(*sip.RouteHeader); ok {
			out = append(out, r)
		}
	}
	return out
}

// setRouteSet replaces the Route headers of req with routes, keeping them
// where the first one stood.
func setRouteSet(req *sip.Request, routes []*sip.RouteHeader) {
	current := req.GetHeaders("Route")
	if len(current) == len(routes) {
		return
	}
	for req.RemoveHeader("Route") {
	}
	for i := len(routes) - 1; i >= 0; i-- {
		req.PrependHeader(routes[i])
	}
}

// opensDialog reports whether req would open a new dialog (an INVITE,
// SUBSCRIBE or REFER outside one): what a graceful stop and an overload
// refuse.
func opensDialog(req *sip.Request) bool {
	switch req.Method {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER:
		return !inDialog(req)
	}
	return false
}

func inDialog(req *sip.Request) bool {
	if to := req.To(); to != nil {
		return to.Params.Has("tag")
	}
	return false
}

func callID(m sip.Message) string {
	if id := m.CallID(); id != nil {
		return id.Value()
	}
	return ""
}

// sourceOf returns where a request (or a response) came from.
func sourceOf(m interface{ Source() string }) pipeline.Source {
	host, port, err := net.SplitHostPort(m.Source())
	if err != nil {
		return pipeline.Source{}
	}
	ip, _ := netip.ParseAddr(host)
	p, _ := strconv.Atoi(port)
	return pipeline.Source{IP: ip.Unmap(), Port: p}
}

// inviteKey identifies an INVITE server transaction the way a CANCEL
// names it (RFC 3261 9.2): top Via branch and sent-by. Without a magic
// cookie (an RFC 2543 client), the branch may be missing or reused, so the
// key also holds what RFC 3261 17.2.3 matches such requests by: the
// Request-URI, From tag, Call-ID and CSeq number.
func inviteKey(req *sip.Request) string {
	via := req.Via()
	if via == nil {
		return ""
	}
	branch, _ := via.Params.Get("branch")
	key := branch + "|" + strings.ToLower(via.Host) + "|" + strconv.Itoa(via.Port)
	if strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		return key
	}
	tag := pipeline.FromTag(req)
	var seq uint32
	if cs := req.CSeq(); cs != nil {
		seq = cs.SeqNo
	}
	return key + "|" + req.Recipient.String() + "|" + tag + "|" + callID(req) + "|" + strconv.FormatUint(uint64(seq), 10)
}
