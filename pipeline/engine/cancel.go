package engine

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// readFilter sees every datagram (and every TCP read) before sipgo parses
// it, on the goroutine that reads the socket.
//
// A UDP request larger than [server] max_message_size gets 513 unparsed.
// Over TCP a read is not a message (it may start in the middle of a body),
// so the limit there is sipgo's: it closes the stream past 65535 bytes.
// A UDP request whose top Via has
// no RFC 3261 branch gets one of the proxy's own (markRFC2543). The last
// datagram of each UDP socket is remembered, for answerUnparsable.
//
// It takes CANCEL requests out of sipgo's way so that the 200 to a
// CANCEL and the 487 to the INVITE are the proxy's own, made after the
// response stages, instead of the ones sipgo's transaction layer would
// write directly. A TCP read that does not start with a whole CANCEL is
// left to sipgo, which then answers the CANCEL itself (its 200 skips the
// response stages; the branches are still cancelled through tx.OnCancel).
//
// Over a stream it tells the connection's guard of the read, for the
// header timeout.
//
// It never returns an error for UDP: that would stop the socket's reader.
func (e *Engine) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	stream := info.Transport != "UDP" && info.Transport != "udp"
	if stream {
		e.guard.Read(addrPort(info.RemoteAddr), data)
	}
	p := e.current.Load()
	if p != nil && p.HasPacketStages() {
		if !p.AllowPacket(addrPort(info.RemoteAddr), transportName(info.Transport)) {
			return nil, nil
		}
	}
	limit := maxMessageSize(p)
	if !stream && len(data) > limit {
		e.tooLarge(info, data, len(data), limit)
		return nil, nil
	}
	if bytes.HasPrefix(data, []byte("CANCEL ")) {
		msg, n, err := e.parser.Parse(data, stream)
		if req, ok := msg.(*sip.Request); ok && err == nil && req.IsCancel() {
			req.SetSource(info.RemoteAddr.String())
			req.SetTransport(transportName(info.Transport))
			if stream {
				e.guard.Delivered(addrPort(info.RemoteAddr))
			} else {
				e.inTurn(info.LocalAddr)
			}
			go e.onCancel(req)
			if !stream || n >= len(data) {
				return nil, nil
			}
			rest := make([]byte, len(data)-n)
			copy(rest, data[n:])
			return rest, nil
		}
	}
	if !stream {
		e.inTurn(info.LocalAddr)
		data = markRFC2543(data, e.answered2543)
		e.sawDatagram(info.LocalAddr, info.RemoteAddr, data)
	}
	return data, nil
}

// inTurn is called on the UDP reader before a datagram is handed on to a
// goroutine of its own (sipgo's for a message, the engine's for a CANCEL):
// it lets the goroutines of the datagrams already read run first. A
// backlog then waits in the socket's queue, first in first out, and not in
// the Go scheduler's, which runs the newest goroutine first and puts an
// overflow of its run queue behind all the rest (a 180 relayed after its
// 200, a BYE before its ACK). Datagrams the filter drops (a banned source,
// one too large) do not wait: a flood is still read and dropped at full
// speed. The reader's share (readerShare) does not count the wait.
func (e *Engine) inTurn(local net.Addr) {
	if l := e.shares.Load(); l != nil {
		for _, r := range *l {
			if r.local == local {
				r.yield()
				return
			}
		}
	}
	runtime.Gosched()
}

// addrPort returns the address of a UDP or TCP peer.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func transportName(t string) string {
	switch t {
	case "udp", "UDP":
		return "UDP"
	case "tcp", "TCP":
		return "TCP"
	}
	return t
}

// onCancel answers a CANCEL (RFC 3261 16.10): 200 and cancellation of the
// matching INVITE's branches, or 481 when no INVITE matches.
func (e *Engine) onCancel(req *sip.Request) {
	e.svc.Metrics.Message("in", "CANCEL", 0)
	v, ok := e.invites.Load(inviteKey(req))
	var t *transaction
	if ok {
		t = v.(*transaction)
		if !t.hold() {
			t = nil // it ended as the CANCEL came
		}
	}
	if t == nil {
		res := sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil)
		e.respondStateless(req, res)
		return
	}
	defer t.unref()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	rc := pipeline.NewResponseContext(t.p, req, res, true, sourceOf(req), t.transport)
	rc.Log = t.log
	if err := t.p.ServeResponse(rc, nil); err != nil {
		t.log.Error("response stage failed", "error", err, "code", 200)
	}
	e.svc.Metrics.Message("out", "CANCEL", 200)
	if err := t.tx.Connection().WriteMsg(res); err != nil {
		t.log.Warn("200 to CANCEL not sent", "error", err)
	}
	t.cancel(req, true)
}

// respondStateless answers a request that has no transaction, after the
// response stages of the current pipeline.
func (e *Engine) respondStateless(req *sip.Request, res *sip.Response) {
	if p := e.holdCurrent(); p != nil {
		defer p.Release()
		rc := pipeline.NewResponseContext(p, req, res, true, sourceOf(req), req.Transport())
		if err := p.ServeResponse(rc, nil); err != nil {
			e.log.Error("response stage failed", "error", err, "code", res.StatusCode)
		}
	}
	e.svc.Metrics.Message("out", "CANCEL", res.StatusCode)
	if err := e.tp.WriteMsg(res); err != nil {
		e.log.Debug("response not sent", "code", res.StatusCode, "error", err)
	}
}

// onStrayResponse relays a response that matches no client transaction:
// a 2xx retransmission after the INVITE's client transaction ended. It is
// sent on statelessly by the next Via, after the response stages.
func (e *Engine) onStrayResponse(res *sip.Response) {
	via := res.Via()
	if via == nil {
		return
	}
	p := e.holdCurrent()
	if p == nil {
		return
	}
	defer p.Release()
	u := sip.Uri{Host: via.Host, Port: via.Port}
	if !p.Ours.URI(&u) || !res.IsSuccess() {
		return
	}
	res.RemoveHeader("Via")
	if res.Via() == nil {
		return
	}
	method := ""
	if cs := res.CSeq(); cs != nil {
		method = string(cs.MethodName)
	}
	e.svc.Metrics.Message("in", method, res.StatusCode)
	e.svc.Metrics.Message("out", method, res.StatusCode)
	rc := pipeline.NewResponseContext(p, nil, res, false, pipeline.Source{}, res.Transport())
	if err := p.ServeResponse(rc, nil); err != nil {
		e.log.Error("response stage failed", "error", err, "code", res.StatusCode)
	}
	e.writeStateless(res)
}
