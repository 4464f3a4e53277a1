package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// Defaults of the forward stage's timers, used when it sets none.
const (
	DefaultProvisionalTimeout = 30 * time.Second
	DefaultInviteTimeout      = 180 * time.Second
)

// cancelledElsewhere is the Reason of the CANCEL sent to the other branches
// when one answers (RFC 3326).
const cancelledElsewhere = `SIP;cause=200;text="Call completed elsewhere"`

// forward relays the request to ctx.Targets (or its Route set or
// Request-URI), one client transaction per target.
func (t *transaction) forward(ctx *pipeline.Context) {
	req := ctx.Request
	if mf := req.MaxForwards(); mf == nil {
		m := sip.MaxForwardsHeader(70)
		req.AppendHeader(&m)
	} else if mf.Val() == 0 {
		if !req.IsAck() {
			t.respond(sip.NewResponseFromRequest(t.req, 483, "Too Many Hops", nil), true)
		}
		return
	} else {
		mf.Dec()
	}
	t.markPreviousHop(req)

	if req.IsAck() {
		t.forwardAck(ctx)
		return
	}
	if !t.admitCallee(ctx) {
		return
	}
	targets := ctx.Targets
	if len(targets) == 0 {
		targets = []pipeline.Target{t.defaultTarget(req)}
	}
	t.mu.Lock()
	if t.cancelled {
		t.mu.Unlock()
		t.respond(sip.NewResponseFromRequest(t.req, 487, "Request Terminated", nil), true)
		return
	}
	t.forwarding = true
	t.mu.Unlock()
	t.expectNotify()

	if ctx.Next != nil {
		// Later rounds need the request as it is now: the last branch
		// of a round takes the request it is given.
		t.mu.Lock()
		t.next, t.nextReq = ctx.Next, req.Clone()
		t.mu.Unlock()
	}
	t.sendTargets(req, targets, true)
	t.mu.Lock()
	t.forwarding = false
	t.mu.Unlock()
	t.maybeFinish()
}

// sendTargets sends req to targets, one branch each (a parallel fork).
// With last, the last branch takes req itself.
func (t *transaction) sendTargets(req *sip.Request, targets []pipeline.Target, last bool) {
	// flowsSent are the instances a branch went to over one of their
	// flows, or that had none up (RFC 5626): their other flows are the
	// branch's failover (otherFlows).
	var flowsSent map[string]bool
	for i, target := range targets {
		if target.Instance != "" && flowsSent[target.Instance] {
			continue
		}
		flows := target.Instance != "" && target.Failover == nil
		if flows {
			target.Failover = otherFlows(targets[i+1:], target.Instance)
		}
		// A branch answered 2xx, or the caller cancelled, while the
		// earlier branches were sent (a TCP connect can take seconds):
		// send no more.
		t.mu.Lock()
		stop := t.answered || t.cancelled
		t.mu.Unlock()
		if stop {
			break
		}
		// The last branch takes the request itself: nothing reads it
		// after this, and a clone costs as much as parsing the message.
		b, tried, err := t.sendSerial(req, target, last && i == len(targets)-1)
		if target.Instance != "" && (err == nil || flows) {
			// Sent, or every flow of the instance tried (its failover).
			if flowsSent == nil {
				flowsSent = map[string]bool{}
			}
			flowsSent[target.Instance] = true
		}
		if err != nil {
			t.notForwarded(tried, err)
			continue
		}
		// Handed to its first client transaction: the call's next
		// messages need not wait for the other branches' connects.
		t.e.calls.end(t.turn)
		t.addBranch(b)
	}
}

// otherFlows returns the failover of a branch to one flow of instance:
// the instance's flows among targets, in their order (RFC 5626 7: a
// request whose flow fails goes to another flow of the same instance),
// or nil for none.
func otherFlows(targets []pipeline.Target, instance string) *pipeline.Failover {
	var next []pipeline.Target
	for _, t := range targets {
		if t.Instance == instance {
			next = append(next, t)
		}
	}
	if next == nil {
		return nil
	}
	return &pipeline.Failover{Next: next}
}

// defaultTarget is where a request goes when no stage chose: within a
// dialog, over the connection our Route names (a flow), or to the
// receiving end's address; otherwise by its Route set or
// Request-URI.
func (t *transaction) defaultTarget(req *sip.Request) pipeline.Target {
	if t.flow != nil {
		return pipeline.Target{URI: *req.Recipient.Clone(), Destination: t.flow.Addr.String(), Transport: t.flow.Transport}
	}
	if t.dialog != nil {
		return t.dialog.target(req)
	}
	return pipeline.Target{URI: *req.Recipient.Clone()}
}

// markPreviousHop sets received and rport on the top Via (RFC 3261 18.2.1,
// RFC 3581), so that responses go back where the request came from.
func (t *transaction) markPreviousHop(req *sip.Request) {
	via := req.Via()
	if via == nil || !t.src.IP.IsValid() {
		return
	}
	if _, ok := via.Params.Get("rport"); ok {
		// RFC 3581 4: with rport, received is added even when it equals
		// the sent-by host.
		via.Params.Add("rport", strconv.Itoa(t.src.Port))
		via.Params.Add("received", t.src.IP.String())
		return
	}
	if ip, err := netip.ParseAddr(strings.Trim(via.Host, "[]")); err != nil || ip.Unmap() != t.src.IP {
		via.Params.Add("received", t.src.IP.String())
	}
}

// nextHop works out where a request goes: host, port and transport, from
// the top Route or the Request-URI, unless the target names a destination.
// A host name is resolved before (withHops), and prepare sends to the
// target's first hop instead; with no resolver the name is left to sipgo.
func nextHop(req *sip.Request, target pipeline.Target) (dest string, transport string) {
	if target.Destination != "" {
		tp := target.Transport
		if tp == "" {
			tp = "UDP"
		}
		return target.Destination, strings.ToUpper(tp)
	}
	uri := &req.Recipient
	if r := pipeline.TopRoute(req); r != nil {
		uri = &r.Address
	}
	transport = uriTransport(uri)
	port := uri.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	return net.JoinHostPort(strings.Trim(uri.Host, "[]"), strconv.Itoa(port)), transport
}

// uriTransport is the transport a URI asks for: its transport parameter,
// UDP without one. A sips URI is reached over TLS, or WSS for
// transport=ws (RFC 3261 26.2.2, RFC 7118 5), whatever else its transport
// parameter says: a sips target is never sent in the clear.
func uriTransport(uri *sip.Uri) string {
	tp, _ := uri.UriParams.Get("transport")
	tp = strings.ToUpper(tp)
	sips := strings.EqualFold(uri.Scheme, "sips")
	switch {
	case sips && (tp == "WS" || tp == "WSS"):
		return "WSS"
	case sips:
		return "TLS"
	case tp == "":
		return "UDP"
	}
	return tp
}

// prepare turns a copy of req into what goes to one next hop:
// Request-URI, Path, Record-Route, our Via, destination (the target's
// first hop, when it has hops) and socket. With last, req itself becomes
// the branch, uncopied: it must not be read after that.
func (t *transaction) prepare(req *sip.Request, target pipeline.Target, branchID string, last bool) (*sip.Request, error) {
	switch {
	case t.flow != nil && target.Destination == t.flow.Addr.String():
		if !t.e.reachable(target) {
			return nil, errFlowGone
		}
	case t.dialog != nil && target.Destination == t.dialog.to.Addr.String():
		target = t.dialog.reachable(t.e, target)
	case !t.e.reachable(target):
		return nil, errFlowGone
	}
	br := req
	if !last {
		br = br.Clone()
	}
	br.Recipient = *target.URI.Clone()
	for i := len(target.Path) - 1; i >= 0; i-- {
		if r, err := parseRoute(target.Path[i]); err == nil {
			br.PrependHeader(r)
		}
	}
	dest, tp := nextHop(br, target)
	if len(target.Hops) > 0 {
		dest, tp = target.Hops[0].Addr.String(), target.Hops[0].Transport
	}
	host, _, _ := net.SplitHostPort(dest)
	dstIP, _ := netip.ParseAddr(host)
	sock, ok := t.e.socketFor(tp, dstIP)
	if !ok {
		return nil, errNoSocket(tp)
	}
	if t.ctx.RecordRoute && !inDialog(br) && recordRoutes(br.Method) {
		caller, callee := t.callerFlow(), targetFlow(target)
		if strings.EqualFold(tp, t.transport) {
			t.addRecordRoute(br, tp, append(caller, callee...))
		} else {
			t.addRecordRoute(br, t.transport, caller)
			t.addRecordRoute(br, tp, callee)
		}
	}
	advHost, advPort := t.p.Advertised(tp)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: tp, Host: advHost, Port: advPort, Params: sip.NewParams()}
	via.Params.Add("branch", branchID)
	via.Params.Add(pipeline.LoopParam, t.loopHash)
	br.PrependHeader(via)
	br.SetTransport(tp)
	br.SetSource("")
	if target.Destination != "" || dstIP.IsValid() {
		br.SetDestination(dest)
	} else {
		br.SetDestination("")
	}
	if tp == "UDP" {
		br.Laddr = sock.local
	} else {
		br.Laddr = sip.Addr{}
	}
	return br, nil
}

// reachable reports whether a target can be sent to. A target whose
// Destination is a stream connection (a flow: the connection a phone
// registered over) is reachable only while that connection is up: the
// proxy never opens one to it, since its Contact may name a .invalid host
// (RFC 7118 5) and its firewall drops connections it did not open.
func (e *Engine) reachable(target pipeline.Target) bool {
	if target.Destination == "" || !isStream(target.Transport) {
		return true
	}
	c, err := e.tp.GetConnection(target.Transport, target.Destination)
	if err != nil || c == nil {
		return false
	}
	_, _ = c.TryClose() // GetConnection took a reference
	return true
}

// isStream reports whether transport is a connection's: TCP, TLS, WS or WSS.
func isStream(transport string) bool {
	return transport != "" && !strings.EqualFold(transport, "UDP")
}

func recordRoutes(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER, sip.NOTIFY:
		return true
	}
	return false
}

// addRecordRoute puts a Record-Route of ours for transport on top, naming
// the flows of the ends it faces.
func (t *transaction) addRecordRoute(req *sip.Request, transport string, flows []pipeline.Flow) {
	host, port := t.p.Advertised(transport)
	u := sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", strings.ToLower(transport))
	u.UriParams.Add("lr", "")
	if id := req.CallID(); id != nil && req.From() != nil {
		key := t.p.Services.DialogKey
		u.UriParams.Add(pipeline.DialogParam, pipeline.DialogToken(key, id.Value(), pipeline.FromTag(req)))
		if len(flows) > 0 {
			u.UriParams.Add(pipeline.FlowParam, pipeline.FlowToken(key, id.Value(), flows...))
		}
	}
	req.PrependHeader(&sip.RecordRouteHeader{Address: u})
}

// parseRoute reads a stored Path entry as a Route. Its header parameters
// are skipped, not read: sipgo reads them in time that grows with the
// square of their count.
func parseRoute(value string) (*sip.RouteHeader, error) {
	var u sip.Uri
	if _, err := sip.ParseAddressValue(value, &u, nil); err != nil {
		return nil, err
	}
	return &sip.RouteHeader{Address: u}, nil
}

// forwardAck relays an ACK for a 2xx: a new request of its own, routed by
// Route and Request-URI, sent without a transaction.
func (t *transaction) forwardAck(ctx *pipeline.Context) {
	target := t.defaultTarget(ctx.Request)
	if len(ctx.Targets) > 0 {
		target = ctx.Targets[0]
	}
	target, err := t.withHops(ctx.Request, target)
	if err != nil {
		t.log.Warn("ACK not relayed: its next hop does not resolve", "stage", "forward", "error", err)
		return
	}
	target = t.e.answeredHop(ctx.Request, target)
	ack, err := t.prepare(ctx.Request, target, sip.GenerateBranch(), true)
	if err != nil {
		t.log.Warn("ACK not relayed", "error", err)
		return
	}
	t.e.svc.Metrics.Message("out", "ACK", 0)
	if err := t.e.tp.WriteMsg(ack); err != nil {
		t.log.Warn("ACK not relayed", "error", err)
	}
}

// sendRequest starts a client transaction for req. Its deadline bounds
// the dial of a stream connection; over UDP nothing is dialled, nor
// resolved (the engine's resolver, which New always makes, hands sipgo an
// address), and a request goes without the deadline's timer.
func (e *Engine) sendRequest(req *sip.Request) (*sip.ClientTx, error) {
	if strings.EqualFold(req.Transport(), "UDP") {
		return e.txl.Request(context.Background(), req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.txl.Request(ctx, req)
}

// notSent keeps the answer of a branch that could not be sent: for a flow
// whose connection is gone, flowFailed's; 503 otherwise.
func (t *transaction) notSent(target pipeline.Target, err error) {
	var noSocket errNoSocket
	if target.Destination != "" && isStream(target.Transport) && !errors.As(err, &noSocket) {
		// The write to the flow's connection failed: it closed between
		// the check and the write.
		err = fmt.Errorf("%w: %w", errFlowGone, err)
	}
	res := sip.NewResponseFromRequest(t.req, 503, "Service Unavailable", nil)
	if errors.Is(err, errFlowGone) {
		t.log.Debug("branch not sent", "target", target.URI.String(), "destination", target.Destination, "error", err)
		res = flowFailed(t.req, target)
	} else {
		t.log.Warn("branch not sent", "target", target.URI.String(), "error", err)
	}
	t.mu.Lock()
	t.finals = append(t.finals, res)
	t.mu.Unlock()
}

// errFlowGone is why a request for a flow whose connection closed is not
// sent.
var errFlowGone = errors.New("the connection of the flow is gone")

type errNoSocket string

func (e errNoSocket) Error() string {
	return "no " + strings.ToLower(string(e)) + " socket to send from: add one to server.listen"
}
