package engine

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/guard"
)

// dialTimeout bounds how long the proxy waits for a TCP connection it
// dials to be set up.
const dialTimeout = 10 * time.Second

var sipgoDefaultLog sync.Once

// tcpTransport returns sipgo's TCP transport with the bounds sipgo's
// default lacks. Each connection it dials passes the guard's caps
// (Guard.Control) and is closed after idle_timeout without data
// (Guard.SweepOutbound), and each write to any of its connections fails
// after guard.WriteTimeout: sipgo's default transport never times a read
// or a write out, and holds one reference more on a connection it dials
// than anyone releases, so that connection stays open until the process
// ends.
//
// A transport given to sipgo this way logs to sipgo's default logger: the
// first engine makes that log (quietly) where its own does. The app runs
// one engine.
func (e *Engine) tcpTransport(log *slog.Logger) *sip.TransportTCP {
	sipgoDefaultLog.Do(func() { sip.SetDefaultLogger(log.With("layer", "transport")) })
	return &sip.TransportTCP{
		WriteTimeout: guard.WriteTimeout,
		DialerCreate: func(laddr net.Addr) net.Dialer {
			return net.Dialer{Timeout: dialTimeout, LocalAddr: laddr, ControlContext: e.guard.Control}
		},
	}
}
