package engine

import (
	"errors"
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/guard"
	"github.com/switchboard-sip/switchboard/pipeline/websocket"
)

// listenWS serves a ws:// or wss:// listener: its connections are
// guarded like TCP ones, and their handshakes checked (websocket.Gate)
// before sipgo's WS transport upgrades them. A wss:// listener runs TLS
// under the gate with the certificate store's listener: the TLS handshake
// happens on the gate's first read, on the connection's own goroutine.
// sipgo's WSS transport serves as its WS one does, with no TLS of its own.
func (e *Engine) listenWS(network string, l config.Listen) error {
	secure := l.Network == "wss"
	if secure && e.certs == nil {
		return errors.New("a wss listener needs [tls] cert and key")
	}
	ln, err := net.Listen("tcp"+strings.TrimPrefix(network, l.Network), l.Addr())
	if err != nil {
		return err
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	gate := &websocket.Gate{
		Path:       l.Path,
		Settings:   e.webSocketSettings,
		Handshaken: func(remote net.Addr) { e.guard.Delivered(addrPort(remote)) },
		Log:        e.log.With("layer", "websocket"),
	}
	guarded := e.guard.Listen(ln)
	if secure {
		e.addSocket("WSS", ap, l.Advertise)
		e.serveStream("wss", gate.Listen(e.certs.Listen(guarded)), ap, e.tp.ServeWSS)
		return nil
	}
	e.addSocket("WS", ap, l.Advertise)
	e.serveStream("ws", gate.Listen(guarded), ap, e.tp.ServeWS)
	return nil
}

// webSocketSettings returns what the WebSocket listeners check and how
// they ping, from the current pipeline's config: a handshake must be sent
// within the header timeout.
func (e *Engine) webSocketSettings() websocket.Settings {
	s := websocket.Settings{PingInterval: config.DefaultPingInterval, HandshakeTimeout: config.DefaultHeaderTimeout}
	p := e.current.Load()
	if p == nil || p.Config == nil {
		return s
	}
	s.Origins = p.Config.WebSocket.Origins
	if d := p.Config.WebSocket.PingInterval.D(); d > 0 {
		s.PingInterval = d
	}
	if d := p.Config.Server.HeaderTimeout.D(); d > 0 {
		s.HandshakeTimeout = d
	}
	return s
}

// wssTransport returns sipgo's WSS transport with the write bound of
// wsTransport. Its dials bypass DialerCreate: sipgo dials them with a
// dialer of its own, bounded only by the transaction (docs/sipgo.md).
func (e *Engine) wssTransport() *sip.TransportWSS {
	return &sip.TransportWSS{TransportWS: e.wsTransport()}
}

// wsTransport returns sipgo's WS transport with the bounds of tcpTransport
// on what it dials. sipgo dials a WebSocket to reach a phone whose
// connection is gone (it fails: a browser listens on no port); that dial
// passes the guard's caps and gives up after dialTimeout, where sipgo's
// default dialer waits as long as the transaction.
func (e *Engine) wsTransport() *sip.TransportWS {
	return &sip.TransportWS{
		WriteTimeout: guard.WriteTimeout,
		DialerCreate: func(net.Addr) ws.Dialer {
			d := net.Dialer{Timeout: dialTimeout, ControlContext: e.guard.Control}
			return ws.Dialer{Timeout: dialTimeout, NetDial: d.DialContext, Protocols: sip.WebSocketProtocols}
		},
	}
}
