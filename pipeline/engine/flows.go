package engine

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// A flow is the stream connection a phone opened (TCP, TLS, WebSocket):
// the phone is reached over it and nowhere else. A binding registered over
// a connection names it (location's Target: Destination and Transport),
// and so does the Record-Route the proxy writes for each end on a
// connection (pipeline.FlowParam), for the dialog's later requests.

// callerFlow is the connection the request came over, as the flows of a
// Record-Route name it; none for a datagram.
func (t *transaction) callerFlow() []pipeline.Flow {
	if !isStream(t.transport) || !t.src.IP.IsValid() {
		return nil
	}
	return []pipeline.Flow{{Transport: strings.ToUpper(t.transport), Addr: t.src.AddrPort()}}
}

// targetFlow is the connection a branch goes over when its target is a
// flow (a phone registered over it); none otherwise.
func targetFlow(target pipeline.Target) []pipeline.Flow {
	if target.Destination == "" || !isStream(target.Transport) {
		return nil
	}
	f, ok := parseFlow(target.Transport, target.Destination)
	if !ok {
		return nil
	}
	return []pipeline.Flow{f}
}

// routeFlow picks, among the flows our Route named in an in-dialog
// request, the one the request goes over: any but the one it came from.
func (t *transaction) routeFlow(req *sip.Request, routes []*sip.Uri) *pipeline.Flow {
	if !inDialog(req) {
		return nil
	}
	from := t.callerFlow()
	key := t.p.Services.DialogKey
	for _, u := range routes {
		value, ok := u.UriParams.Get(pipeline.FlowParam)
		if !ok {
			continue
		}
		for _, f := range pipeline.ParseFlowToken(key, callID(req), value) {
			if len(from) == 1 && f == from[0] {
				continue
			}
			return &f
		}
	}
	return nil
}

// parseFlow reads a flow from a transport and an "ip:port" address.
func parseFlow(transport, addr string) (pipeline.Flow, bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return pipeline.Flow{}, false
	}
	return pipeline.Flow{Transport: strings.ToUpper(transport), Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, true
}
