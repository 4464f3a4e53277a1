package guard

import (
	"errors"
	"net"
	"sync"
	"time"
)

// The delays between failed accepts, as net/http's Server uses: from
// minBackoff, doubled at each failure, up to maxBackoff.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// Listen wraps ln: its Accept returns only connections within the limits,
// each closed past its timeouts, and an error only once ln is closed. A
// failed accept (out of file descriptors, a connection reset before it was
// accepted) is retried after a pause, and logged once for the burst.
func (g *Guard) Listen(ln net.Listener) net.Listener {
	return &listener{Listener: ln, g: g, closed: make(chan struct{})}
}

type listener struct {
	net.Listener
	g         *Guard
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	failures := 0
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			if failures == 0 {
				l.g.log.Error("accept failed: retrying until it succeeds", "addr", l.Addr().String(), "error", err)
			}
			failures++
			delay = min(max(2*delay, minBackoff), maxBackoff)
			select {
			case <-time.After(delay):
				continue
			case <-l.closed:
				return nil, net.ErrClosed
			}
		}
		if failures > 0 {
			l.g.log.Warn("accepting again", "addr", l.Addr().String(), "failed_accepts", failures)
			failures, delay = 0, 0
		}
		if gc := l.g.wrap(c); gc != nil {
			return gc, nil
		}
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
