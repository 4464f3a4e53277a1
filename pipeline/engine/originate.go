package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// The engine sends the requests the proxy originates itself (the
// REGISTERs of outbound registrations) for pipeline.Sender: the next hop
// is resolved as a forwarded request's is (RFC 3263), and each address
// tried in turn until one answers.

var _ pipeline.Sender = (*Engine)(nil)

// Send implements pipeline.Sender.
func (e *Engine) Send(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if err := e.awaitSockets(ctx); err != nil {
		return nil, err
	}
	hops, err := e.originHops(ctx, &req.Recipient)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, hop := range hops {
		sent := req
		if i < len(hops)-1 {
			sent = req.Clone()
		}
		res, err := e.sendOrigin(ctx, sent, hop)
		if err == nil {
			return res, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", hop, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// originHops are the addresses a request the proxy originates goes to:
// those of its Request-URI's host, which the proxy has a socket for.
func (e *Engine) originHops(ctx context.Context, uri *sip.Uri) ([]resolve.Target, error) {
	host := strings.Trim(uri.Host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		tp := uriTransport(uri)
		port := uri.Port
		if port == 0 {
			port = sip.DefaultPort(tp)
		}
		return []resolve.Target{{Addr: netip.AddrPortFrom(ip, uint16(port)), Transport: tp, Name: host, Host: host}}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	hops, err := e.resolver.Resolve(rctx, uri)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri.Host, err)
	}
	usable := e.usableHops(hops)
	if len(usable) == 0 {
		return nil, errNoHop
	}
	return usable, nil
}

// sendOrigin sends req to one address in a client transaction and waits
// for its final response.
func (e *Engine) sendOrigin(ctx context.Context, req *sip.Request, hop resolve.Target) (*sip.Response, error) {
	tp := strings.ToUpper(hop.Transport)
	sock, ok := e.socketFor(tp, hop.Addr.Addr())
	if !ok {
		return nil, errNoSocket(tp)
	}
	host, port := sock.Addr.Addr().String(), int(sock.Addr.Port())
	if p := e.current.Load(); p != nil {
		host, port = p.Advertised(tp)
	}
	req.RemoveHeader("Via")
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: tp, Host: host, Port: port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.PrependHeader(via)
	if p := e.current.Load(); p != nil {
		p.StampUserAgent(req)
	}
	req.SetTransport(tp)
	req.SetDestination(hop.Addr.String())
	if tp == "UDP" {
		req.Laddr = sock.local
	} else {
		req.Laddr = sip.Addr{}
		if err := e.dialTLSName(hop); err != nil {
			return nil, err
		}
	}
	tx, err := e.sendRequest(req)
	if err != nil {
		return nil, err
	}
	return e.finalResponse(ctx, tx, req.Method)
}

// finalResponse waits for the final response of tx, a client transaction
// of the proxy's own request of method, counting what goes and comes.
func (e *Engine) finalResponse(ctx context.Context, tx *sip.ClientTx, method sip.RequestMethod) (*sip.Response, error) {
	defer tx.Terminate()
	e.svc.Metrics.Message("out", string(method), 0)
	for {
		select {
		case res := <-tx.Responses():
			e.svc.Metrics.Message("in", string(method), res.StatusCode)
			if !res.IsProvisional() {
				return res, nil
			}
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("the transaction ended without a final response")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// awaitSockets waits until sipgo serves every UDP socket: a request sent
// from one before that (an outbound registration started while the first
// config is built) makes sipgo bind a second socket to its address, which
// fails.
func (e *Engine) awaitSockets(ctx context.Context) error {
	if e.socketsServed.Load() {
		return nil
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		served := true
		for _, s := range e.sockets {
			if s.Transport != "UDP" {
				continue
			}
			c := e.tp.Pool("udp").Get(s.Addr.String())
			if c == nil {
				served = false
				break
			}
			_, _ = c.TryClose() // Get took a reference
		}
		if served {
			e.socketsServed.Store(true)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
