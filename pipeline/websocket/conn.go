package websocket

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// conn is a connection whose handshake passed. It first hands sipgo's
// upgrader the request already read, then reads on. It counts what it
// reads, for the pings, and follows the frames sipgo writes, so that a
// ping goes out between two frames, never inside one.
type conn struct {
	net.Conn
	g          *Gate
	head, rest []byte       // to replay, the request first: the upgrader reads nothing past it
	read       atomic.Int64 // bytes read from the peer

	mu   sync.Mutex
	idle *sync.Cond // signalled when no frame is half written
	// tail holds the last bytes of the upgrader's response, until its
	// blank line: after it come frames.
	tail     []byte
	upgraded bool
	// pending counts the payload bytes of the frame being written that
	// are still to come; lost is set when the writes can no longer be
	// followed (a failed write, a header split in two), which ends the
	// pings.
	pending      int64
	lost, closed bool
	pinger       *time.Timer
	readAtPing   int64 // read when the last ping went out
	pinged       bool
}

func newConn(c net.Conn, g *Gate, head, rest []byte) *conn {
	wc := &conn{Conn: c, g: g, head: head, rest: rest}
	wc.idle = sync.NewCond(&wc.mu)
	wc.mu.Lock()
	defer wc.mu.Unlock()
	wc.pinger = time.AfterFunc(g.Settings().PingInterval, wc.ping)
	return wc
}

func (c *conn) Read(b []byte) (int, error) {
	for _, replay := range []*[]byte{&c.head, &c.rest} {
		if len(*replay) > 0 {
			n := copy(b, *replay)
			if *replay = (*replay)[n:]; len(*replay) == 0 {
				*replay = nil // the handshake's buffer goes
			}
			return n, nil
		}
	}
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if err != nil {
		c.lost = true
	} else if !c.upgraded {
		c.tail = append(c.tail, b...)
		c.tail = c.tail[max(0, len(c.tail)-4):]
		c.upgraded = bytes.Equal(c.tail, []byte("\r\n\r\n"))
	} else {
		c.follow(b)
	}
	if c.pending == 0 || c.lost {
		c.idle.Broadcast()
	}
	return n, err
}

// follow takes b, written after the handshake, as frame headers and
// payloads: sipgo writes each header whole, then the payload.
func (c *conn) follow(b []byte) {
	for len(b) > 0 && !c.lost {
		if c.pending > 0 {
			k := min(int64(len(b)), c.pending)
			c.pending -= k
			b = b[k:]
			continue
		}
		hlen, plen, ok := frameHeader(b)
		if !ok {
			c.lost = true
			return
		}
		b, c.pending = b[hlen:], plen
	}
}

// frameHeader reads the length of the frame header that starts b and of
// its payload (RFC 6455 section 5.2); ok is false when b does not hold the
// whole header.
func frameHeader(b []byte) (hlen int, plen int64, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	hlen, plen = 2, int64(b[1]&0x7f)
	switch plen {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	}
	if b[1]&0x80 != 0 {
		hlen += 4 // a mask key
	}
	if len(b) < hlen {
		return 0, 0, false
	}
	switch plen {
	case 126:
		plen = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		plen = int64(binary.BigEndian.Uint64(b[2:10]) &^ (1 << 63))
	}
	return hlen, plen, true
}

// ping closes the connection if the peer sent nothing since the last ping,
// and otherwise sends a ping (RFC 6455 section 5.5.2) and sets the next.
func (c *conn) ping() {
	if c.unanswered() {
		c.g.Log.Debug("websocket closed: pings not answered", "remote", c.RemoteAddr().String())
		_ = c.Close()
		return
	}
	c.writePing()
}

// writePing writes a ping between two frames, once the upgrader's answer
// is out, and sets the next ping, unless the connection is closed.
func (c *conn) writePing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pending > 0 && !c.lost && !c.closed {
		c.idle.Wait()
	}
	if c.lost || c.closed {
		return
	}
	if c.upgraded {
		c.readAtPing, c.pinged = c.read.Load(), true
		if _, err := c.Conn.Write(ws.CompiledPing); err != nil {
			c.lost = true
			return
		}
	}
	c.pinger.Reset(c.g.Settings().PingInterval)
}

// unanswered reports whether nothing was read since the last ping.
func (c *conn) unanswered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinged && c.read.Load() == c.readAtPing
}

// Close closes the connection, which ends a write blocked on it, and
// stops the pings.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	c.closed = true
	c.pinger.Stop()
	c.idle.Broadcast()
	c.mu.Unlock()
	return err
}
