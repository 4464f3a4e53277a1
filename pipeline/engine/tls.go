package engine

import (
	"errors"
	"net"
	"strings"

	"github.com/switchboard-sip/switchboard/config"
)

// listenTLS serves TLS on l (network is "tls4" or "tls6") with sipgo's TLS transport. The guard wraps
// the TCP listener, so that the caps and timeouts of TCP connections hold
// for TLS ones too (the header timeout counts from the accept, the
// handshake included), and the certificate store's listener runs the
// handshake with its own timeout over it.
func (e *Engine) listenTLS(network string, l config.Listen) error {
	if e.certs == nil {
		return errors.New("a tls listener needs [tls] cert and key")
	}
	ln, err := net.Listen("tcp"+strings.TrimPrefix(network, "tls"), l.Addr())
	if err != nil {
		return err
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	e.addSocket("TLS", ap, l.Advertise)
	e.serveStream("tls", e.certs.Listen(e.guard.Listen(ln)), ap, e.tp.ServeTLS)
	if e.dialed == nil {
		e.dialed = newDialedListener(ap)
		e.serveStream("tls (dialed)", e.dialed, ap, e.tp.ServeTLS)
	}
	return nil
}
