package pipeline

import "github.com/emiago/sipgo/sip"

// StampServer adds the Server header (server.server_header) to a response
// the proxy made itself, unless the setting is empty or the response has
// one. A relayed response must not get one: it names the agent that made
// the response. A nil pipeline stamps nothing.
func (p *Pipeline) StampServer(res *sip.Response) {
	if p == nil || p.Config.Server.ServerHeader == "" || res.GetHeader("Server") != nil {
		return
	}
	res.AppendHeader(sip.NewHeader("Server", p.Config.Server.ServerHeader))
}

// StampUserAgent adds the User-Agent header (server.user_agent) to a
// request the proxy originates, such as a keepalive ping, unless the
// setting is empty or the request has one. Relayed requests keep the
// caller's. A nil pipeline stamps nothing.
func (p *Pipeline) StampUserAgent(req *sip.Request) {
	if p == nil || p.Config.Server.UserAgent == "" || req.GetHeader("User-Agent") != nil {
		return
	}
	req.AppendHeader(sip.NewHeader("User-Agent", p.Config.Server.UserAgent))
}
