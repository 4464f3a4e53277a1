package guard

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// holding listens on the loopback address ip and holds each connection it
// accepts until the test ends; it returns the address.
func holding(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// TestOutboundCaps dials through the Guard's Control to two addresses,
// with at most 3 connections and 2 to one address.
func TestOutboundCaps(t *testing.T) {
	g := New(Limits{MaxConnections: 3, MaxPerSource: 2}, slog.New(slog.DiscardHandler))
	addrs := map[string]string{}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		addrs[ip] = holding(t, ip)
	}
	d := net.Dialer{Timeout: time.Second, ControlContext: g.Control}
	var open []net.Conn
	steps := []struct {
		to    string // an address to dial, or "" to close the first open
		admit bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.1", true},
		{"127.0.0.1", false}, // max_connections_per_source
		{"127.0.0.2", true},
		{"127.0.0.2", false}, // max_connections
		{"", true},
		{"127.0.0.2", true},
		{"127.0.0.1", false},
	}
	for i, s := range steps {
		if s.to == "" {
			open[0].Close()
			open = open[1:]
			continue
		}
		c, err := d.Dial("tcp4", addrs[s.to])
		if (err == nil) != s.admit {
			t.Fatalf("step %d: dial to %s: error %v, want admitted %v", i, s.to, err, s.admit)
		}
		if err == nil {
			open = append(open, c)
		}
	}
	if got := g.Outbound(); got != len(open) {
		t.Errorf("%d outbound connections counted, want %d", got, len(open))
	}
	for _, c := range open {
		c.Close()
	}
	if got := g.Outbound(); got != 0 {
		t.Errorf("%d outbound connections counted once all are closed", got)
	}
}

// TestSweepOutbound checks that a connection the proxy dialed is shut once
// nothing was read from it for the idle timeout, and only then.
func TestSweepOutbound(t *testing.T) {
	const idle = time.Minute
	g := New(Limits{IdleTimeout: idle}, slog.New(slog.DiscardHandler))
	addr := holding(t, "127.0.0.1")
	d := net.Dialer{Timeout: time.Second, ControlContext: g.Control}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	shut := func() bool {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	start := time.Now()
	g.Read(netip.MustParseAddrPort(addr), []byte("SIP/2.0 200 OK\r\n"))
	g.SweepOutbound(start.Add(idle / 2))
	if shut() {
		t.Fatal("shut before the idle timeout")
	}
	g.SweepOutbound(time.Now().Add(idle))
	if !shut() {
		t.Fatal("not shut after the idle timeout")
	}
}
