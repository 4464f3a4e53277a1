package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/dialog"
)

// The engine relays an in-dialog request that carries a Route it signed
// only within a dialog it saw established, from one of its two ends to the
// other, and sends it to the address that other end's messages came from:
// the Route's signature says the proxy record-routed this Call-ID, the
// dialog store says which dialogs it holds and where their ends are. A
// stolen Route replayed with other tags, another Request-URI, a Route to
// another host or after the dialog ended is refused, and a Contact that
// names a gateway leads nowhere but to the end that wrote it.

// dialogOf looks up the dialog of an in-dialog request. A request
// without both tags has none.
func (e *Engine) dialogOf(req *sip.Request, now time.Time) (dialog.ID, dialog.Dialog, bool, error) {
	from, to := pipeline.FromTag(req), pipeline.ToTag(req)
	if from == "" || to == "" {
		return dialog.ID{}, dialog.Dialog{}, false, nil
	}
	id := dialog.NewID(callID(req), from, to)
	d, ok, err := e.dialogs.Get(id, now)
	return id, d, ok, err
}

// checkDialog admits an in-dialog request that came with a signed Route
// of ours, or answers it (an ACK is dropped) and returns false.
func (t *transaction) checkDialog(ctx *pipeline.Context) bool {
	req := ctx.Request
	id, d, ok, err := t.e.dialogOf(req, ctx.Received)
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
		t.log.Debug("in-dialog request refused: no such dialog", "from_tag", pipeline.FromTag(req), "to_tag", pipeline.ToTag(req))
		t.refuseInDialog(ctx, 481, "Call/Transaction Does Not Exist")
		return false
	}
	_, to := d.Ends(pipeline.FromTag(req))
	if code, reason := admit(req, &d, *to); code != 0 {
		t.log.Log(context.Background(), refusalLevel(req, code), "in-dialog request refused", "code", code, "reason", reason, "request_uri", req.Recipient.String(), "source", ctx.Source.String())
		t.refuseInDialog(ctx, code, reason)
		return false
	}
	t.dialog = &dialogUse{id: id, from: pipeline.FromTag(req), to: *to}
	shiftCSeq(req, &d)
	t.extendDialog(ctx, d)
	return true
}

// admit returns the answer to a request in dialog d that goes to the end
// to, or 0 when the request is relayed.
func admit(req *sip.Request, d *dialog.Dialog, to dialog.End) (int, string) {
	switch {
	case d.Ended && req.Method != sip.BYE && req.Method != sip.NOTIFY:
		return 481, "Call/Transaction Does Not Exist"
	case !d.Confirmed && (req.IsInvite() || req.IsAck()):
		return 403, "Forbidden: the dialog is not established"
	case !to.Reaches(dialog.TargetKey(&req.Recipient)):
		return 403, "Forbidden: not addressed to an end of the dialog"
	case nextRoute(req) != to.Next:
		return 403, "Forbidden: Route does not lead to an end of the dialog"
	}
	return 0, ""
}

// refusalLevel is the level an in-dialog refusal is logged at. An ACK in
// a dialog that ended (481) is the ACK of a 2xx retransmitted across the
// BYE, of which an overloaded proxy sees thousands. Any other refusal is a
// request the dialog does not allow, a replay among them: a warning.
func refusalLevel(req *sip.Request, code int) slog.Level {
	if code == 481 && req.IsAck() {
		return slog.LevelDebug
	}
	return slog.LevelWarn
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
// 4.1.2.4), when it goes to that request's sender (and is sent to where
// that request came from).
func (t *transaction) notifyBeforeAnswer(ctx *pipeline.Context) bool {
	req := ctx.Request
	to := pipeline.ToTag(req)
	if to == "" {
		return false
	}
	d, ok, err := t.e.dialogs.Get(dialog.NewID(callID(req), to, ""), ctx.Received)
	if err != nil || !ok || !d.Caller.Reaches(dialog.TargetKey(&req.Recipient)) || nextRoute(req) != d.Caller.Next {
		return false
	}
	t.dialog = &dialogUse{to: d.Caller}
	return true
}

// dialogUse is the dialog an in-dialog request was admitted in.
type dialogUse struct {
	id   dialog.ID // zero for a NOTIFY before its SUBSCRIBE's 2xx
	from string    // the sender's tag
	to   dialog.End
}

// target is where the request goes: its Request-URI, sent to the address
// the receiving end's messages came from.
func (u *dialogUse) target(req *sip.Request) pipeline.Target {
	return pipeline.Target{URI: *req.Recipient.Clone(), Destination: u.to.Addr.String(), Transport: u.to.Transport}
}

// reachable is the receiving end's address, or, when it is a TCP
// connection that closed, the same host at the port its Contact names
// (a phone listens there; an end is never reached at another host).
func (u *dialogUse) reachable(e *Engine, target pipeline.Target) pipeline.Target {
	if !strings.EqualFold(target.Transport, "TCP") {
		return target
	}
	if c, err := e.tp.GetConnection("tcp", target.Destination); err == nil && c != nil {
		_, _ = c.TryClose() // GetConnection took a reference
		return target
	}
	port := target.URI.Port
	if port == 0 {
		port = 5060
	}
	target.Destination = netip.AddrPortFrom(u.to.Addr.Addr(), uint16(port)).String()
	return target
}

// extendDialog keeps a dialog dialog_timeout after its latest request (to
// the minute: it is written again at most once a minute).
func (t *transaction) extendDialog(ctx *pipeline.Context, d dialog.Dialog) {
	timeout := t.dialogTimeout()
	if d.Ended || d.Expires.Sub(ctx.Received) > timeout-time.Minute {
		return
	}
	t.updateDialog(t.dialog.id, func(d *dialog.Dialog, found bool) bool {
		if !found || d.Ended {
			return false
		}
		d.Expires = ctx.Received.Add(timeout)
		return true
	})
}

// dialogAnswered keeps what the final response to an admitted in-dialog request
// changes: a 2xx to a target refresh (re-INVITE, UPDATE, SUBSCRIBE,
// NOTIFY, REFER) moves the sender's end to the Contact and address of the
// request, and the answering end to the Contact of the 2xx (RFC 6141: a
// refused refresh changes nothing); a BYE's answer ends the dialog, but a
// challenge (401, 407) does not.
func (t *transaction) dialogAnswered(res *sip.Response) {
	use := t.dialog
	if use == nil || use.id == (dialog.ID{}) || res.StatusCode < 200 {
		return
	}
	req, now := t.req, time.Now()
	switch {
	case req.Method == sip.BYE && res.StatusCode != 401 && res.StatusCode != 407:
		t.updateDialog(use.id, func(d *dialog.Dialog, found bool) bool {
			if !found || d.Ended {
				return false
			}
			d.Ended, d.Expires = true, now.Add(64*sip.T1)
			return true
		})
	case res.IsSuccess() && targetRefresh(req.Method):
		src := t.src.AddrPort()
		t.updateDialog(use.id, func(d *dialog.Dialog, found bool) bool {
			if !found || d.Ended {
				return false
			}
			sender, receiver := d.Ends(use.from)
			changed := sender.Refresh(contactKey(req))
			if sender.Next == "" && t.src.IP.IsValid() && (sender.Addr != src || sender.Transport != t.transport) {
				sender.Addr, sender.Transport = src, t.transport // it moved (a phone changing networks)
				changed = true
			}
			return receiver.Refresh(contactKey(res)) || changed
		})
	}
}

// recordsDialog reports whether the request creates a dialog the proxy
// record-routed, which it must therefore keep. An unsolicited NOTIFY
// (message waiting) makes none worth keeping.
func (t *transaction) recordsDialog() bool {
	return t.ctx != nil && t.ctx.RecordRoute && !inDialog(t.req) && recordRoutes(t.req.Method) &&
		t.req.Method != sip.NOTIFY && pipeline.FromTag(t.req) != ""
}

// expectNotify keeps, for the few seconds until its answer, the caller's
// end of a SUBSCRIBE or REFER that creates a dialog: its NOTIFYs may come
// before its 2xx.
func (t *transaction) expectNotify() {
	if !t.recordsDialog() || (t.req.Method != sip.SUBSCRIBE && t.req.Method != sip.REFER) {
		return
	}
	now := time.Now()
	id := dialog.NewID(callID(t.req), pipeline.FromTag(t.req), "")
	t.mu.Lock()
	t.legs = append(t.legs, leg{id: id})
	t.mu.Unlock()
	t.updateDialog(id, func(d *dialog.Dialog, _ bool) bool {
		*d = dialog.Dialog{CallerTag: pipeline.FromTag(t.req), Caller: t.callerEnd(), Expires: now.Add(64 * sip.T1)}
		return true
	})
}

// recordDialog keeps the dialog that a provisional response with a To tag
// (early) or a 2xx (confirmed) from branch b creates, before the response
// is relayed: the caller's next request (an ACK, a PRACK) cannot come
// before it.
func (t *transaction) recordDialog(b *branch, res *sip.Response) {
	if !t.recordsDialog() || res.StatusCode == 100 {
		return
	}
	to := pipeline.ToTag(res)
	if to == "" {
		return
	}
	caller := pipeline.FromTag(t.req)
	id := dialog.NewID(callID(t.req), caller, to)
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
	// An early dialog lasts as long as its INVITE: the transaction's final
	// response forgets it (endEarlyDialogs), however long it rang.
	expires := time.Now().Add(t.dialogTimeout())
	callee, shift := t.calleeEnd(b, res), t.cseqShift(b)
	t.updateDialog(id, func(d *dialog.Dialog, found bool) bool {
		if found && d.Confirmed {
			return false
		}
		if !found {
			d.CallerTag, d.Caller = caller, t.callerEnd()
		}
		d.Callee, d.Confirmed, d.Expires, d.CallerCSeqShift = callee, confirmed, expires, shift
		return true
	})
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
		if err := t.e.dialogs.Delete(id); err != nil {
			t.log.Warn("dialog store", "error", err)
		}
	}
}

func (t *transaction) updateDialog(id dialog.ID, fn func(d *dialog.Dialog, found bool) bool) {
	if err := t.e.dialogs.Update(id, time.Now(), fn); err != nil {
		t.log.Warn("dialog store", "error", err)
	}
}

// leg is a dialog, or an awaited NOTIFY, that the transaction recorded.
type leg struct {
	id        dialog.ID
	confirmed bool
}

// callerEnd is the caller's end of the dialog the transaction creates: its
// Contact, where its request came from, and the Record-Route below ours
// (the previous proxy) that requests towards it follow.
func (t *transaction) callerEnd() dialog.End {
	end := dialog.End{Target: contactKey(t.req), Addr: t.src.AddrPort(), Transport: t.transport}
	if rr := t.req.GetHeader("Record-Route"); rr != nil {
		if h, ok := rr.(*sip.RecordRouteHeader); ok {
			end.Next = dialog.TargetKey(&h.Address)
		}
	}
	return end
}

// calleeEnd is the end that answered on branch b: the response's Contact,
// where it came from, and the Record-Route just above ours (the next
// proxy).
func (t *transaction) calleeEnd(b *branch, res *sip.Response) dialog.End {
	end := dialog.End{Target: contactKey(res), Addr: sourceOf(res).AddrPort(), Transport: strings.ToUpper(b.req.Transport())}
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
