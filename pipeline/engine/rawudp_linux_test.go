package engine

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

// TestRawUDP checks that rawUDP reads and writes what net.UDPConn does,
// with the same addresses and errors, on an IPv4 and an IPv6 socket.
func TestRawUDP(t *testing.T) {
	cases := []struct {
		name    string
		network string
		listen  string
		peer    string
	}{
		{"IPv4", "udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"IPv6", "udp6", "[::1]:0", "[::1]:0"},
		{"IPv4 peer of a dual-stack socket", "udp", "[::]:0", "127.0.0.1:0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			std, err := net.ListenPacket(tc.network, tc.listen)
			if err != nil {
				t.Skipf("no %s socket here: %v", tc.network, err)
			}
			defer std.Close()
			c := rawUDPConn(std.(*net.UDPConn))
			if _, ok := c.(*rawUDP); !ok {
				t.Fatalf("rawUDPConn returned %T, want *rawUDP", c)
			}
			peer, err := net.ListenPacket("udp", tc.peer)
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			port := std.LocalAddr().(*net.UDPAddr).Port
			to := &net.UDPAddr{IP: peer.LocalAddr().(*net.UDPAddr).IP, Port: port}
			deadline := time.Now().Add(5 * time.Second)
			c.SetDeadline(deadline)
			peer.SetDeadline(deadline)

			// A datagram in, read the raw way: the source as net.UDPConn gives it.
			if _, err := peer.WriteTo([]byte("OPTIONS"), to); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 64)
			n, from, err := c.ReadFrom(b)
			if err != nil || string(b[:n]) != "OPTIONS" {
				t.Fatalf("ReadFrom = %q, %v", b[:n], err)
			}
			fromStd := peerAsSeen(t, std, peer, to)
			if from.String() != fromStd.String() || len(from.(*net.UDPAddr).IP) != len(fromStd.(*net.UDPAddr).IP) {
				t.Errorf("ReadFrom's source = %v (%d bytes of IP), net.UDPConn's %v (%d bytes)",
					from, len(from.(*net.UDPAddr).IP), fromStd, len(fromStd.(*net.UDPAddr).IP))
			}

			// A datagram out, written the raw way, arrives from the socket.
			if !new(rawOp).setSockaddr(from.(*net.UDPAddr), c.(*rawUDP).v6) {
				t.Fatalf("%v: WriteTo would not take the raw way", from)
			}
			if n, err := c.WriteTo([]byte("SIP/2.0 200 OK"), from); err != nil || n != 14 {
				t.Fatalf("WriteTo = %d, %v", n, err)
			}
			n, src, err := peer.ReadFrom(b)
			if err != nil || string(b[:n]) != "SIP/2.0 200 OK" || src.(*net.UDPAddr).Port != port {
				t.Fatalf("peer read %q from %v, %v", b[:n], src, err)
			}

			// With its control messages: the arrival stamp comes with it.
			m := c.(msgReader)
			if !stampArrivals(m) {
				t.Fatal("the kernel does not stamp arrivals")
			}
			before := time.Now()
			if _, err := peer.WriteTo([]byte("BYE"), to); err != nil {
				t.Fatal(err)
			}
			oob := make([]byte, stampOOB)
			n, oobn, _, ap, err := m.ReadMsgUDPAddrPort(b, oob)
			if err != nil || string(b[:n]) != "BYE" {
				t.Fatalf("ReadMsgUDPAddrPort = %q, %v", b[:n], err)
			}
			if ap.Port() != uint16(peer.LocalAddr().(*net.UDPAddr).Port) {
				t.Errorf("ReadMsgUDPAddrPort's source = %v, want the peer's port", ap)
			}
			if at, ok := arrivedAt(oob[:oobn]); !ok || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
				t.Errorf("arrival stamp = %v, %v; sent at %v", at, ok, before)
			}
		})
	}
}

// peerAsSeen returns the peer's address as net.UDPConn's own ReadFrom on
// the same socket returns it.
func peerAsSeen(t *testing.T, std net.PacketConn, peer net.PacketConn, to net.Addr) net.Addr {
	t.Helper()
	if _, err := peer.WriteTo([]byte("x"), to); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	_, from, err := std.(*net.UDPConn).ReadFrom(b)
	if err != nil {
		t.Fatal(err)
	}
	return from
}

// TestRawUDPErrors checks the errors: a deadline, a close, and an address
// the socket cannot send to, each as net.UDPConn gives it.
func TestRawUDPErrors(t *testing.T) {
	std, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := rawUDPConn(std.(*net.UDPConn))
	b := make([]byte, 8)

	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := c.ReadFrom(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past its deadline = %v, want a deadline error", err)
	}
	c.SetReadDeadline(time.Time{})

	for _, to := range []net.Addr{
		&net.UDPAddr{IP: net.IPv6loopback, Port: 5060},
		&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 70000},
	} {
		_, rawErr := c.WriteTo([]byte("x"), to)
		_, stdErr := std.WriteTo([]byte("x"), to)
		if (rawErr == nil) != (stdErr == nil) {
			t.Errorf("WriteTo(%v) = %v, net.UDPConn's %v", to, rawErr, stdErr)
		}
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(b)
		done <- err
	}()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom on a closed socket = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom did not return on close")
	}
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo on a closed socket = %v, want net.ErrClosed", err)
	}
	if _, _, _, _, err := c.(msgReader).ReadMsgUDPAddrPort(b, nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadMsgUDPAddrPort on a closed socket = %v, want net.ErrClosed", err)
	}
}

// TestRawSockaddr checks the addresses a raw write names, and that they
// read back as written: the family the socket speaks, the port in network
// byte order, and a refusal of what the socket cannot name.
func TestRawSockaddr(t *testing.T) {
	cases := []struct {
		addr   string
		v6     bool
		ok     bool
		family uint16
		bytes  []byte // the sockaddr's first bytes after the family: the port
		back   string // as read back
	}{
		{"192.0.2.10:5060", false, true, 2, []byte{0x13, 0xc4}, "192.0.2.10:5060"},
		{"192.0.2.10:5060", true, true, 10, []byte{0x13, 0xc4}, "[::ffff:192.0.2.10]:5060"},
		{"[2001:db8::1]:65535", true, true, 10, []byte{0xff, 0xff}, "[2001:db8::1]:65535"},
		{"[2001:db8::1]:5060", false, false, 0, nil, ""},
		{"192.0.2.10:70000", false, false, 0, nil, ""},
	}
	for _, tc := range cases {
		host, port, _ := net.SplitHostPort(tc.addr)
		p, _ := strconv.Atoi(port)
		a := &net.UDPAddr{IP: net.ParseIP(host), Port: p}
		op := new(rawOp)
		if ok := op.setSockaddr(a, tc.v6); ok != tc.ok {
			t.Errorf("%s (IPv6 socket %v): named %v, want %v", tc.addr, tc.v6, ok, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		raw := (*[4]byte)(unsafe.Pointer(&op.sa))
		if op.sa.Addr.Family != tc.family || raw[2] != tc.bytes[0] || raw[3] != tc.bytes[1] {
			t.Errorf("%s (IPv6 socket %v): family %d, port bytes % x; want %d, % x", tc.addr, tc.v6, op.sa.Addr.Family, raw[2:4], tc.family, tc.bytes)
		}
		if got := sockaddrAddrPort(&op.sa); got != netip.MustParseAddrPort(tc.back) {
			t.Errorf("%s (IPv6 socket %v): reads back as %v, want %s", tc.addr, tc.v6, got, tc.back)
		}
	}
}
