package engine

import (
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// The engine sends the keepalive pings of pipeline/keepalive: the OPTIONS
// go out statelessly (no client transaction: a ping is never
// retransmitted, and one unanswered is the news), and their answers, which
// no transaction claims, come back through onStrayResponse.

// newKeepalive makes the engine's Pinger and puts it in the services,
// for the registrar. Start runs it.
func (e *Engine) newKeepalive() {
	store := func() location.Store { return e.svc.Location }
	e.svc.Keepalive = keepalive.New(store, e.sendPing, func(ev string) { e.svc.Metrics.Keepalive(ev) }, e.log.With("layer", "keepalive"))
}

// runKeepalive runs the pinger until the engine stops, once sipgo reads
// every UDP socket (awaitUDP).
func (e *Engine) runKeepalive() {
	e.awaitUDP()
	e.svc.Keepalive.Run(e.stop)
}

// awaitUDP waits, up to a second, until sipgo reads from every UDP
// socket. sipgo adds a socket to its pool when its reader starts; a ping
// sent from the socket's address before that makes sipgo bind a socket
// of its own to it, which fails, and a pinger restored at start pings at
// once (see docs/sipgo.md).
func (e *Engine) awaitUDP() {
	l := e.shares.Load()
	if l == nil {
		return
	}
	timeout := time.After(time.Second)
	for _, r := range *l {
		select {
		case <-r.reading:
		case <-timeout:
			return
		case <-e.stop:
			return
		}
	}
}

// sendPing writes one OPTIONS ping to a binding behind NAT: to the
// address its REGISTER came from, from the socket it came in on.
func (e *Engine) sendPing(pg keepalive.Ping) error {
	var uri sip.Uri
	if err := sip.ParseUri(pg.Contact, &uri); err != nil {
		return err
	}
	sock, ok := e.pingSocket(pg.Local, pg.Received.Addr())
	if !ok {
		return errNoSocket("UDP")
	}
	host, port := sock.Addr.Addr().String(), int(sock.Addr.Port())
	p := e.current.Load()
	if p != nil {
		host, port = p.Advertised("UDP")
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: host, Port: port, Params: sip.NewParams()}
	via.Params.Add("branch", pg.Branch)
	req.AppendHeader(via)
	me := sip.Uri{Scheme: "sip", Host: host, Port: port}
	from := &sip.FromHeader{Address: me, Params: sip.NewParams()}
	from.Params.Add("tag", pg.CallID)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: uri, Params: sip.NewParams()})
	callID := sip.CallIDHeader(pg.CallID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: pg.Seq, MethodName: sip.OPTIONS})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	p.StampUserAgent(req)
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	req.SetTransport("UDP")
	req.SetDestination(pg.Received.String())
	req.Laddr = sock.local
	e.svc.Metrics.Message("out", "OPTIONS", 0)
	return e.tp.WriteMsg(req)
}

// pingSocket is the UDP socket a ping leaves from: local, the one the
// REGISTER came in on, while it is open; else the one any request to dst
// would leave from.
func (e *Engine) pingSocket(local netip.AddrPort, dst netip.Addr) (boundSocket, bool) {
	for _, s := range e.sockets {
		if s.Transport == "UDP" && s.Addr == local {
			return s, true
		}
	}
	return e.socketFor("UDP", dst)
}

// pingAnswered takes the answer to a ping: any response whose top Via
// names a ping's branch.
func (e *Engine) pingAnswered(res *sip.Response) bool {
	via := res.Via()
	if via == nil || e.svc.Keepalive == nil {
		return false
	}
	branch, _ := via.Params.Get("branch")
	return e.svc.Keepalive.Answered(branch, time.Now())
}

// markLocal sets Laddr, which sipgo uses for sending only, on a REGISTER
// read from a UDP socket to that socket's address, so that the registrar
// knows which socket a phone behind NAT is to be pinged from. The socket
// is found by the datagram its reader is handing on (parseWatch), from
// src; none when two sockets read one from src at once.
func (e *Engine) markLocal(req *sip.Request, src netip.AddrPort) {
	l := e.parseWatches.Load()
	if l == nil {
		return
	}
	var local net.Addr
	for _, w := range *l {
		if f := w.from.Load(); f != nil && addrPort(f) == src {
			if local != nil {
				return
			}
			local = w.local
		}
	}
	if a, ok := local.(*net.UDPAddr); ok {
		req.Laddr = sip.Addr{IP: a.IP, Port: a.Port}
	}
}
