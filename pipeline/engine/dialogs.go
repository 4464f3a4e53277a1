package engine

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
)

// The engine relays an in-dialog request that carries a Route it signed
// only within a dialog it saw established, from one of its two ends to the
// other: the Route's signature says the proxy record-routed this Call-ID,
// the dialog store says which dialogs it holds and where their ends are.
// A stolen Route replayed with other tags, another Request-URI, a Route to
// another host or after the dialog ended is refused.

// dialogOf looks up the dialog of an in-dialog request in either
// direction. fromCaller says whether the request comes from the dialog's
// caller.
func (e *Engine) dialogOf(req *sip.Request, now time.Time) (id dialog.ID, d dialog.Dialog, fromCaller, ok bool, err error) {
	from, to := tags(req)
	id = dialog.ID{CallID: callID(req), CallerTag: from, CalleeTag: to}
	d, ok, err = e.svc.Dialogs.Get(id, now)
	if ok || err != nil {
		return id, d, true, ok, err
	}
	id = dialog.ID{CallID: id.CallID, CallerTag: to, CalleeTag: from}
	d, ok, err = e.svc.Dialogs.Get(id, now)
	return id, d, false, ok, err
}

// checkDialog admits an in-dialog request that came with a signed Route
// of ours, or answers it (an ACK is dropped) and returns false.
func (t *transaction) checkDialog(ctx *pipeline.Context) bool {
	req := ctx.Request
	id, d, fromCaller, ok, err := t.e.dialogOf(req, ctx.Received)
	if err != nil {
		t.log.Error("dialog store", "error", err)
		if !req.IsAck() {
			res := ctx.Reply(503, "Service Unavailable")
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			t.respond(res, true)
		}
		return false
	}
	if !ok {
		if req.Method == sip.NOTIFY && t.notifyBeforeAnswer(ctx) {
			return true
		}
		t.refuseInDialog(ctx, 481, "Call/Transaction Does Not Exist")
		return false
	}
	from, to := d.Caller, d.Callee
	if !fromCaller {
		from, to = d.Callee, d.Caller
	}
	if reason := admit(req, ctx.Source.IP, d.Confirmed, from, to); reason != "" {
		t.log.Warn("in-dialog request refused", "reason", reason, "request_uri", req.Recipient.String(), "source", ctx.Source.String())
		t.refuseInDialog(ctx, 403, "Forbidden: "+reason)
		return false
	}
	t.dialog = &dialogUse{id: id, d: d, fromCaller: fromCaller}
	t.refreshDialog(ctx)
	return true
}

// admit says why a request from end from to end to of a dialog is not
// relayed, or "" when it is.
func admit(req *sip.Request, src netip.Addr, confirmed bool, from, to dialog.End) string {
	switch {
	case !confirmed && (req.IsInvite() || req.IsAck()):
		return "the dialog is not established"
	case from.Source.IsValid() && src.IsValid() && from.Source != src:
		return "not sent by an end of the dialog"
	case !to.Reaches(dialog.TargetKey(&req.Recipient)):
		return "not addressed to an end of the dialog"
	case nextRoute(req) != to.Next:
		return "Route does not lead to an end of the dialog"
	}
	return ""
}

// refuseInDialog answers a refused in-dialog request; an ACK is dropped.
func (t *transaction) refuseInDialog(ctx *pipeline.Context, code int, reason string) {
	if ctx.Request.IsAck() {
		return
	}
	t.respond(ctx.Reply(code, reason), true)
}

// notifyBeforeAnswer admits a NOTIFY that reached the proxy before the
// 2xx of the SUBSCRIBE or REFER that created its dialog (RFC 6665
// 4.1.2.4), when it goes to that request's sender.
func (t *transaction) notifyBeforeAnswer(ctx *pipeline.Context) bool {
	req := ctx.Request
	_, to := tags(req)
	d, ok, err := t.e.svc.Dialogs.Get(dialog.ID{CallID: callID(req), CallerTag: to}, ctx.Received)
	if err != nil || !ok {
		return false
	}
	return d.Caller.Reaches(dialog.TargetKey(&req.Recipient)) && nextRoute(req) == d.Caller.Next
}

// dialogUse is the dialog an in-dialog request was admitted in.
type dialogUse struct {
	id         dialog.ID
	d          dialog.Dialog
	fromCaller bool
}

// refreshDialog keeps the dialog of an admitted request: a target refresh
// moves the sender's end to its new Contact, and the dialog's life is
// extended once half of it has gone.
func (t *transaction) refreshDialog(ctx *pipeline.Context) {
	req, use := ctx.Request, t.dialog
	d := use.d
	changed := false
	if targetRefresh(req.Method) {
		end := &d.Caller
		if !use.fromCaller {
			end = &d.Callee
		}
		changed = end.Refresh(contactKey(req))
	}
	timeout := t.dialogTimeout()
	if d.Expires.Sub(ctx.Received) < timeout/2 {
		d.Expires = ctx.Received.Add(timeout)
		changed = true
	}
	if !changed {
		return
	}
	use.d = d
	if err := t.e.svc.Dialogs.Replace(use.id, d, ctx.Received); err != nil {
		t.log.Warn("dialog store", "error", err)
	}
}

// endDialog forgets the dialog of a BYE the proxy relays.
func (t *transaction) endDialog() {
	if t.dialog == nil || t.req.Method != sip.BYE {
		return
	}
	if err := t.e.svc.Dialogs.Delete(t.dialog.id); err != nil {
		t.log.Warn("dialog store", "error", err)
	}
}

// refreshedByAnswer moves the answering end of a dialog to the Contact of
// a 2xx to a target refresh (a re-INVITE's 200 may name a new one).
func (t *transaction) refreshedByAnswer(res *sip.Response) {
	use := t.dialog
	if use == nil || !targetRefresh(t.req.Method) {
		return
	}
	d := use.d
	end := &d.Callee
	if !use.fromCaller {
		end = &d.Caller
	}
	if !end.Refresh(contactKey(res)) {
		return
	}
	if err := t.e.svc.Dialogs.Replace(use.id, d, time.Now()); err != nil {
		t.log.Warn("dialog store", "error", err)
	}
}

// recordsDialog reports whether the request creates a dialog the proxy
// record-routed, which it must therefore keep.
func (t *transaction) recordsDialog() bool {
	return t.ctx != nil && t.ctx.RecordRoute && !inDialog(t.req) && recordRoutes(t.req.Method)
}

// expectNotify keeps, for the few seconds until its answer, the caller's
// end of a SUBSCRIBE or REFER that creates a dialog: its NOTIFYs may come
// before its 2xx.
func (t *transaction) expectNotify() {
	if !t.recordsDialog() || (t.req.Method != sip.SUBSCRIBE && t.req.Method != sip.REFER) {
		return
	}
	now := time.Now()
	id := dialog.ID{CallID: callID(t.req), CallerTag: fromTag(t.req)}
	d := dialog.Dialog{Caller: t.callerEnd(), Expires: now.Add(64 * sip.T1)}
	t.mu.Lock()
	t.legs = append(t.legs, leg{id: id})
	t.mu.Unlock()
	if err := t.e.svc.Dialogs.Put(id, d, now); err != nil {
		t.log.Warn("dialog store", "error", err)
	}
}

// recordDialog keeps the dialog that a provisional response with a To tag
// (early) or a 2xx (confirmed) from a branch creates, before the response
// is relayed: the caller's next request (an ACK, a PRACK) cannot come
// before it.
func (t *transaction) recordDialog(res *sip.Response) {
	if !t.recordsDialog() || res.StatusCode == 100 {
		return
	}
	to := toTag(res)
	if to == "" {
		return
	}
	id := dialog.ID{CallID: callID(t.req), CallerTag: fromTag(t.req), CalleeTag: to}
	confirmed := res.IsSuccess()
	t.mu.Lock()
	i := slices.IndexFunc(t.legs, func(l leg) bool { return l.id == id })
	if i < 0 {
		t.legs = append(t.legs, leg{id: id})
		i = len(t.legs) - 1
	} else if t.legs[i].confirmed || !confirmed {
		t.mu.Unlock()
		return // nothing new: a second 18x, a 2xx after the 2xx
	}
	t.legs[i].confirmed = confirmed
	t.mu.Unlock()
	now := time.Now()
	d := dialog.Dialog{Caller: t.callerEnd(), Callee: t.calleeEnd(res), Confirmed: confirmed}
	if confirmed {
		d.Expires = now.Add(t.dialogTimeout())
	} else {
		d.Expires = now.Add(DefaultInviteTimeout + 64*sip.T1)
	}
	if err := t.e.svc.Dialogs.Put(id, d, now); err != nil {
		t.log.Warn("dialog store", "error", err)
	}
}

// endEarlyDialogs forgets the early dialogs and the awaited NOTIFYs of
// the transaction once its final response went upstream: a cancelled or
// failed INVITE leaves no dialog to send requests in.
func (t *transaction) endEarlyDialogs() {
	t.mu.Lock()
	var ended []dialog.ID
	kept := t.legs[:0]
	for _, l := range t.legs {
		if l.confirmed {
			kept = append(kept, l)
		} else {
			ended = append(ended, l.id)
		}
	}
	t.legs = kept
	t.mu.Unlock()
	for _, id := range ended {
		if err := t.e.svc.Dialogs.Delete(id); err != nil {
			t.log.Warn("dialog store", "error", err)
		}
	}
}

// leg is a dialog, or an awaited NOTIFY, that the transaction recorded.
type leg struct {
	id        dialog.ID
	confirmed bool
}

// callerEnd is the caller's end of the dialog the transaction creates: its
// Contact, where its requests come from, and the Record-Route below ours
// (the previous proxy) that requests towards it follow.
func (t *transaction) callerEnd() dialog.End {
	end := dialog.End{Target: contactKey(t.req), Source: t.src.IP}
	if rr := t.req.GetHeader("Record-Route"); rr != nil {
		if h, ok := rr.(*sip.RecordRouteHeader); ok {
			end.Next = dialog.TargetKey(&h.Address)
		}
	}
	return end
}

// calleeEnd is the answering end: the response's Contact, where it came
// from, and the Record-Route just above ours (the next proxy).
func (t *transaction) calleeEnd(res *sip.Response) dialog.End {
	end := dialog.End{Target: contactKey(res)}
	if host, _, err := net.SplitHostPort(res.Source()); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			end.Source = ip.Unmap()
		}
	}
	var above *sip.Uri
	for _, h := range res.GetHeaders("Record-Route") {
		rr, ok := h.(*sip.RecordRouteHeader)
		if !ok {
			continue
		}
		if t.ctx.IsOurs(&rr.Address) {
			break
		}
		above = &rr.Address
	}
	if above != nil {
		end.Next = dialog.TargetKey(above)
	}
	return end
}

func (t *transaction) dialogTimeout() time.Duration {
	if d := time.Duration(t.p.Config.Server.DialogTimeout); d > 0 {
		return d
	}
	return config.DefaultDialogTimeout
}

// targetRefresh reports whether a request of method m changes its
// sender's remote target (RFC 3261 12.2, RFC 3311, RFC 6665).
func targetRefresh(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.UPDATE, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER:
		return true
	}
	return false
}

// nextRoute is the Route a request goes to next, after ours were taken
// off, as TargetKey writes it ("" for none).
func nextRoute(req *sip.Request) string {
	if r := pipeline.TopRoute(req); r != nil {
		return dialog.TargetKey(&r.Address)
	}
	return ""
}

// contactKey is the Contact of a request or response, as TargetKey
// writes it ("" for none).
func contactKey(m interface{ Contact() *sip.ContactHeader }) string {
	if c := m.Contact(); c != nil {
		return dialog.TargetKey(&c.Address)
	}
	return ""
}

func tags(req *sip.Request) (from, to string) {
	return fromTag(req), toTag(req)
}

func fromTag(m sip.Message) string {
	if f := m.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		return tag
	}
	return ""
}

func toTag(m sip.Message) string {
	if t := m.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		return tag
	}
	return ""
}
