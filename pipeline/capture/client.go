package capture

import (
	"net"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

// redialAfter is how long a client waits, after a TCP collector failed,
// before it dials again: the packets in between are dropped, not queued.
const redialAfter = time.Second

// dialTimeout bounds a dial of the collector; it runs on the sending
// goroutine, never on SIP's.
const dialTimeout = 2 * time.Second

// client sends HEP packets to one collector address, over UDP or TCP (the
// packets are self-delimiting by their length). A change of address, on
// reload, closes the old connection.
type client struct {
	address string // udp://host:port or tcp://host:port
	conn    net.Conn
	failed  time.Time
}

// send writes one packet to address.
func (c *client) send(address string, packet []byte, now time.Time) error {
	if address != c.address {
		c.close()
		c.address = address
		c.failed = time.Time{}
	}
	if c.conn == nil {
		if !c.failed.IsZero() && now.Sub(c.failed) < redialAfter {
			return errCollectorDown
		}
		network, hostport, err := config.CaptureAddress(address)
		if err == nil {
			c.conn, err = net.DialTimeout(network, hostport, dialTimeout)
		}
		if err != nil {
			c.failed = now
			return err
		}
	}
	if _, err := c.conn.Write(packet); err != nil {
		if _, stream := c.conn.(*net.TCPConn); stream {
			c.close()
			c.failed = now
		}
		return err
	}
	return nil
}

func (c *client) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

type captureError string

func (e captureError) Error() string { return string(e) }

// errCollectorDown is returned while a failed TCP collector waits to be
// dialled again.
const errCollectorDown = captureError("collector down: waiting to dial again")
