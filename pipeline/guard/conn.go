package guard

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// WriteTimeout bounds each write to a stream connection: a peer that
// stops reading cannot hold a response, and the transaction that sends
// it, for longer.
const WriteTimeout = 5 * time.Second

// writeTimeout is WriteTimeout, which tests shorten.
var writeTimeout = WriteTimeout

// conn is an accepted connection the Guard counts. It owns the read
// deadline: each Read waits at most until the connection's timeout.
type conn struct {
	net.Conn
	g        *Guard
	remote   netip.AddrPort
	accepted time.Time
	// started is when the message being read began (UnixNano), 0 between
	// messages; last when the last whole message came, 0 before the
	// first; bound until when the latest binding on it lives.
	started, last, bound atomic.Int64
	closeOnce            sync.Once
	// wmu makes writes one at a time, each under its own deadline: a
	// writer waiting its turn cannot push back the deadline of the one
	// blocked on a peer that does not read.
	wmu sync.Mutex
	// bindings holds, by AOR, until when the bindings on the connection
	// live (UnixNano); the Guard's mu guards it.
	bindings map[string]int64
}

// rebind sets bound to the latest of the bindings, with the Guard's mu
// held. When that is earlier than before, a Read waiting under the old
// deadline is woken to take the new one.
func (c *conn) rebind() {
	var latest int64
	for _, t := range c.bindings {
		latest = max(latest, t)
	}
	if c.bound.Swap(latest) > latest {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

// wrap admits c, or closes it and returns nil when it is past a cap.
func (g *Guard) wrap(c net.Conn) net.Conn {
	remote := remoteAddr(c)
	gc := &conn{Conn: c, g: g, remote: remote, accepted: time.Now()}
	if refusal := g.admit(gc); refusal != "" {
		_ = c.Close()
		if log, skipped := g.refused.hit(time.Now()); log {
			g.log.Warn("connection refused", "limit", refusal, "remote", remote.String(), "local", c.LocalAddr().String(), "refused_before", skipped)
		}
		return nil
	}
	return gc
}

func remoteAddr(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return unmap(a.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return unmap(ap)
}

// Read reads until data comes or the connection's timeout passes: then it
// closes the connection and returns io.EOF, as for a peer that closed it.
func (c *conn) Read(b []byte) (int, error) {
	for {
		now := time.Now()
		seen := c.bound.Load() // the bound the deadline is taken from
		dl := c.deadline(c.g.limits.Load())
		if !dl.IsZero() && !now.Before(dl) {
			c.g.log.Debug("connection closed: timed out", "remote", c.remote.String(), "local", c.LocalAddr().String(), "reason", c.timeout())
			_ = c.Close()
			return 0, io.EOF
		}
		if err := c.Conn.SetReadDeadline(dl); err != nil {
			return 0, err
		}
		if c.bound.Load() < seen {
			continue // Bind took a binding back meanwhile: the deadline may be earlier
		}
		n, err := c.Conn.Read(b)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			continue // the timeout is checked again: Bind or Delivered may have moved it
		}
		return n, err
	}
}

// deadline returns when the connection times out at the limits l, or the
// zero time for never.
func (c *conn) deadline(l *Limits) time.Time {
	if l.HeaderTimeout > 0 {
		if c.last.Load() == 0 {
			return c.accepted.Add(l.HeaderTimeout)
		}
		if s := c.started.Load(); s != 0 {
			return time.Unix(0, s).Add(l.HeaderTimeout)
		}
	}
	if l.IdleTimeout <= 0 || c.last.Load() == 0 {
		return time.Time{}
	}
	d := time.Unix(0, c.last.Load()).Add(l.IdleTimeout)
	if b := c.bound.Load(); b != 0 && time.Unix(0, b).After(d) {
		d = time.Unix(0, b)
	}
	return d
}

// timeout names the timeout that closes the connection, for the log.
func (c *conn) timeout() string {
	if c.started.Load() != 0 || c.last.Load() == 0 {
		return "header_timeout"
	}
	return "idle_timeout"
}

// Write writes b, or fails once writeTimeout has passed since it began
// (after the writes before it): then it closes the connection, which a
// message written in part leaves of no use.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.g.log.Debug("connection closed: not read", "remote", c.remote.String(), "local", c.LocalAddr().String(), "reason", "write timeout")
		_ = c.Close()
	}
	return n, err
}

// SetReadDeadline is ignored: the Guard sets the read deadline.
func (c *conn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is ignored: each Write sets its own deadline.
func (c *conn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline is ignored: the Guard sets both deadlines.
func (c *conn) SetDeadline(time.Time) error { return nil }

// Close closes the connection and takes it off the Guard's counts. A
// connection the Guard closed (a timeout) is closed again by its reader:
// Close after the first returns nil. The socket is closed before OnClose's
// function hears of it: a request written after that fails, and is not
// left waiting for an answer.
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.g.release(c)
	})
	return err
}
