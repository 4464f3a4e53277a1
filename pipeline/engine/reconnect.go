package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// markReceived sets received to the source address on the top Via of a
// request that came over a stream, when its sent-by host is not that
// address or the sender wrote a received of its own (RFC 3261 18.2.1).
// sipgo answers over the request's connection; when that is gone, it
// opens one to the Via's received address and sent-by port (RFC 3261
// 18.2.2), and without received, to the sent-by host: a host the sender
// chose, whose name it would look up in DNS.
func markReceived(req *sip.Request, src netip.Addr) {
	via := req.Via()
	if via == nil || !src.IsValid() {
		return
	}
	_, has := via.Params.Get("received")
	host, err := netip.ParseAddr(strings.Trim(via.Host, "[]"))
	if has || err != nil || host.Unmap() != src {
		via.Params.Add("received", src.String())
	}
}

// resendOverStream sends a response the server transaction did not send,
// for a request that came over a stream: a 2xx over the request's
// connection, and any response over a new connection when that one is
// gone (reconnect).
func (t *transaction) resendOverStream(res *sip.Response) {
	conn, err := t.e.tp.GetConnection(t.transport, t.req.Source())
	switch {
	case err == nil && res.IsSuccess():
		err = conn.WriteMsg(res)
		_, _ = conn.TryClose()
	case err == nil:
		_, _ = conn.TryClose()
		err = errors.New("the server transaction refused it, not the connection")
	default:
		err = t.e.reconnect(res, t.transport)
	}
	if err != nil {
		t.log.Debug("response not sent", "code", res.StatusCode, "error", err)
	}
}

// reconnect sends res, the answer to a request that came over a stream
// transport whose connection is gone, over a connection of that transport
// to the top Via's received address (its sent-by host when that is the
// address) and sent-by port, as RFC 3261 18.2.2 asks. A sent-by host name
// is never looked up, and the Via's transport is not taken: the sender
// would choose it. A connection dialed for this is closed once res is
// written.
func (e *Engine) reconnect(res *sip.Response, transport string) error {
	via := res.Via()
	if via == nil {
		return errors.New("no Via")
	}
	host := via.Host
	if r, ok := via.Params.Get("received"); ok && r != "" {
		host = r
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return fmt.Errorf("no address to reconnect to: Via host %q and no received", host)
	}
	port := via.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	dst := netip.AddrPortFrom(ip.Unmap(), uint16(port))
	if conn, err := e.tp.GetConnection(transport, dst.String()); err == nil {
		defer conn.TryClose()
		return conn.WriteMsg(res)
	}
	// sipgo opens connections for requests only: the connection a request
	// to dst would take is pooled and read like any other.
	probe := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: dst.Addr().String(), Port: port})
	probe.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: transport, Params: sip.NewParams()})
	probe.SetTransport(transport)
	probe.SetDestination(dst.String())
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	conn, err := e.tp.ClientRequestConnection(ctx, probe)
	if err != nil {
		return err
	}
	err = conn.WriteMsg(res)
	closeDialed(conn)
	return err
}

// closeDialed closes a connection dialed to send one response. sipgo
// holds three references on a connection it dials (the caller's, its
// reader's and an idle one) and closes it when the last is dropped: the
// first two are dropped here, and the reader's when its read ends, which
// shutting the read side makes it do at once.
func closeDialed(conn sip.Connection) {
	_, _ = conn.TryClose()
	_, _ = conn.TryClose()
	if c, ok := conn.(*sip.TCPConnection); ok {
		if r, ok := c.Conn.(interface{ CloseRead() error }); ok && r.CloseRead() == nil {
			return
		}
	}
	_ = conn.Close()
}
