package parse

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// looped reports whether the request carries a Via of ours whose LoopParam
// equals the request's pipeline.LoopHash: the proxy forwarded this very request
// before, and it came back unchanged.
func looped(ctx *pipeline.Context) bool {
	part := ""
	for _, h := range ctx.Request.Headers() {
		via, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		v, ok := via.Params.Get(pipeline.LoopParam)
		if !ok {
			continue
		}
		if part == "" {
			part = pipeline.LoopHash(ctx.Request)
		}
		if v == part && ctx.IsOurs(viaURI(via)) {
			return true
		}
	}
	return false
}

// viaURI returns the sent-by of a Via as a URI, for Context.IsOurs.
func viaURI(via *sip.ViaHeader) *sip.Uri {
	scheme := "sip"
	if strings.EqualFold(via.Transport, "TLS") || strings.EqualFold(via.Transport, "WSS") {
		scheme = "sips"
	}
	return &sip.Uri{Scheme: scheme, Host: via.Host, Port: via.Port}
}
