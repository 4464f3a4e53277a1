package engine

import (
	"context"
	"strconv"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

var _ pipeline.Outbound = (*Engine)(nil)

// Resolve finds the addresses of uri's host (RFC 3263), for stages that
// reach next hops on their own.
func (e *Engine) Resolve(ctx context.Context, uri *sip.Uri) ([]resolve.Target, error) {
	return e.resolver.Resolve(ctx, uri)
}

// Options sends an OPTIONS for uri to hop from the socket of hop's
// transport, as a client transaction, and returns its final response.
// It is the health check of destination sets: a gateway sees it come from
// the address calls come from. ctx bounds the wait; the client
// transaction ends when it returns.
func (e *Engine) Options(ctx context.Context, uri sip.Uri, from sip.Uri, hop resolve.Target) (*sip.Response, error) {
	p := e.current.Load()
	if p == nil {
		return nil, pipeline.ErrNotRunning
	}
	sock, ok := e.socketFor(hop.Transport, hop.Addr.Addr())
	if !ok {
		return nil, errNoSocket(hop.Transport)
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	host, port := p.Advertised(hop.Transport)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: hop.Transport, Host: host, Port: port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	fromHdr := &sip.FromHeader{Address: from, Params: sip.NewParams()}
	fromHdr.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(fromHdr)
	req.AppendHeader(&sip.ToHeader{Address: uri, Params: sip.NewParams()})
	callID := sip.CallIDHeader("probe-" + sip.GenerateTagN(20))
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	req.AppendHeader(sip.NewHeader("Content-Length", strconv.Itoa(0)))
	req.SetTransport(hop.Transport)
	req.SetDestination(hop.Addr.String())
	if hop.Transport == "UDP" {
		req.Laddr = sock.local
	}
	tx, err := e.txl.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return e.finalResponse(ctx, tx, sip.OPTIONS)
}
