package engine

import (
	"net"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/guard"
)

// dialTimeout bounds how long the proxy waits for a TCP connection it
// dials to be set up.
const dialTimeout = 10 * time.Second

// tcpTransport returns sipgo's TCP transport with the bounds sipgo's
// default lacks. Each connection it dials passes the guard's caps
// (Guard.Control) and is closed after idle_timeout without data
// (Guard.SweepOutbound), and each write to any of its connections fails
// after guard.WriteTimeout: sipgo's default transport never times a read
// or a write out, and holds one reference more on a connection it dials
// than anyone releases, so that connection stays open until the process
// ends.
// It logs to sipgo's default logger (see applySipgo).
func (e *Engine) tcpTransport() *sip.TransportTCP {
	return &sip.TransportTCP{
		WriteTimeout: guard.WriteTimeout,
		DialerCreate: func(laddr net.Addr) net.Dialer {
			return net.Dialer{Timeout: dialTimeout, LocalAddr: laddr, ControlContext: e.guard.Control}
		},
	}
}

// tlsTransport returns sipgo's TLS transport on tcpTransport, so that the
// TLS connections the proxy dials have the bounds of its TCP ones; without
// it sipgo's default TLS transport dials with none of them. It serves the
// TLS listeners too.
func (e *Engine) tlsTransport() *sip.TransportTLS {
	return &sip.TransportTLS{TransportTCP: e.tcpTransport()}
}
