package engine

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP is a UDP socket whose reads and writes are raw system calls,
// made through the socket's poller (syscall.RawConn): they wait for the
// socket as the standard ones do, but the Go runtime is not told of them.
// A system call the runtime is told of wakes its monitor thread (sysmon)
// from its deep sleep whenever every P was idle, and the monitor then
// polls every 20 µs for a millisecond or more; a proxy under moderate load
// goes idle between most datagrams, so the monitor's wakes cost it dearly
// (docs/benchmarks.md, the thirteenth round). A datagram's read or write
// on a non-blocking socket never blocks, so the runtime loses nothing by
// not knowing.
type rawUDP struct {
	*net.UDPConn
	raw syscall.RawConn
	v6  bool // an AF_INET6 socket: addresses are sockaddr_in6
}

// rawUDPConn returns c with raw reads and writes, or c itself when its
// raw descriptor cannot be had.
func rawUDPConn(c *net.UDPConn) net.PacketConn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	var domain int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || serr != nil {
		return c
	}
	return &rawUDP{UDPConn: c, raw: raw, v6: domain == unix.AF_INET6}
}

// rawOp is one read or write in flight: its arguments and results, and
// the functions the poller calls, bound once so that a datagram costs no
// closure.
type rawOp struct {
	b, oob     []byte
	sa         unix.RawSockaddrAny
	salen      uint32
	n, oobn    int
	flags      int
	errno      unix.Errno
	recv, send func(fd uintptr) bool
	recvmsg    func(fd uintptr) bool
}

var rawOps = sync.Pool{New: func() any {
	op := new(rawOp)
	op.recv, op.send, op.recvmsg = op.doRecv, op.doSend, op.doRecvmsg
	return op
}}

func getOp() *rawOp { return rawOps.Get().(*rawOp) }

func putOp(op *rawOp) {
	op.b, op.oob = nil, nil
	rawOps.Put(op)
}

// doRecv reads a datagram into op.b; false means none is waiting.
func (op *rawOp) doRecv(fd uintptr) bool {
	for {
		op.salen = unix.SizeofSockaddrAny
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(op.b))), uintptr(len(op.b)),
			0, uintptr(unsafe.Pointer(&op.sa)), uintptr(unsafe.Pointer(&op.salen)))
		if e == unix.EINTR {
			continue
		}
		op.n, op.errno = int(n), e
		return e != unix.EAGAIN
	}
}

// doRecvmsg reads a datagram into op.b and its control messages into
// op.oob; false means none is waiting.
func (op *rawOp) doRecvmsg(fd uintptr) bool {
	iov := unix.Iovec{Base: unsafe.SliceData(op.b)}
	iov.SetLen(len(op.b))
	var msg unix.Msghdr
	msg.Name = (*byte)(unsafe.Pointer(&op.sa))
	msg.Namelen = unix.SizeofSockaddrAny
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(op.oob) > 0 {
		msg.Control = unsafe.SliceData(op.oob)
		msg.SetControllen(len(op.oob))
	}
	for {
		n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
		if e == unix.EINTR {
			continue
		}
		op.n, op.errno = int(n), e
		op.oobn, op.flags, op.salen = int(msg.Controllen), int(msg.Flags), msg.Namelen
		return e != unix.EAGAIN
	}
}

// doSend sends op.b to op.sa; false means the socket's buffer is full.
func (op *rawOp) doSend(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(op.b))), uintptr(len(op.b)),
			0, uintptr(unsafe.Pointer(&op.sa)), uintptr(op.salen))
		if e == unix.EINTR {
			continue
		}
		op.n, op.errno = int(n), e
		return e != unix.EAGAIN
	}
}

// ReadFrom reads the next datagram, as net.UDPConn's does.
func (c *rawUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	op := getOp()
	defer putOp(op)
	op.b = b
	if err := c.raw.Read(op.recv); err != nil {
		return 0, nil, c.opError("read", nil, err)
	}
	if op.errno != 0 {
		return 0, nil, c.opError("read", nil, os.NewSyscallError("recvfrom", op.errno))
	}
	from := fromSockaddr(&op.sa)
	if from == nil {
		return 0, nil, c.opError("read", nil, errNoSource)
	}
	return op.n, from, nil
}

// ReadMsgUDPAddrPort reads the next datagram with its control messages,
// as net.UDPConn's does.
func (c *rawUDP) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	op := getOp()
	defer putOp(op)
	op.b, op.oob = b, oob
	if err := c.raw.Read(op.recvmsg); err != nil {
		return 0, 0, 0, netip.AddrPort{}, c.opError("read", nil, err)
	}
	if op.errno != 0 {
		return 0, 0, 0, netip.AddrPort{}, c.opError("read", nil, os.NewSyscallError("recvmsg", op.errno))
	}
	from := sockaddrAddrPort(&op.sa)
	if !from.IsValid() {
		return 0, 0, 0, netip.AddrPort{}, c.opError("read", nil, errNoSource)
	}
	return op.n, op.oobn, op.flags, from, nil
}

// WriteTo sends b to addr, as net.UDPConn's does. An address the raw
// write cannot name (not a *net.UDPAddr, an IPv6 zone, a family the
// socket does not speak) goes the standard way, errors and all.
func (c *rawUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil || ua.Zone != "" {
		return c.UDPConn.WriteTo(b, addr)
	}
	op := getOp()
	defer putOp(op)
	if !op.setSockaddr(ua, c.v6) {
		return c.UDPConn.WriteTo(b, addr)
	}
	op.b = b
	if err := c.raw.Write(op.send); err != nil {
		return 0, c.opError("write", addr, err)
	}
	if op.errno != 0 {
		return 0, c.opError("write", addr, os.NewSyscallError("sendto", op.errno))
	}
	return op.n, nil
}

// setSockaddr writes a's address into op.sa as the socket's family
// names it, and reports whether it could.
func (op *rawOp) setSockaddr(a *net.UDPAddr, v6 bool) bool {
	if a.Port < 0 || a.Port > 0xffff {
		return false
	}
	if !v6 {
		ip4 := a.IP.To4()
		if ip4 == nil {
			return false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&op.sa))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET}
		putPort(&sa.Port, a.Port)
		copy(sa.Addr[:], ip4)
		op.salen = unix.SizeofSockaddrInet4
		return true
	}
	ip16 := a.IP.To16()
	if ip16 == nil {
		return false
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&op.sa))
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	putPort(&sa.Port, a.Port)
	copy(sa.Addr[:], ip16)
	op.salen = unix.SizeofSockaddrInet6
	return true
}

// putPort stores port in a sockaddr's port field, in network byte order.
func putPort(p *uint16, port int) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(p))[:], uint16(port))
}

// getPort reads a sockaddr's port field.
func getPort(p *uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])
}

// sockaddrAddrPort returns the address in sa, the zero AddrPort when it
// is neither IPv4 nor IPv6.
func sockaddrAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), getPort(&s.Port))
	case unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		a := netip.AddrFrom16(s.Addr)
		if s.Scope_id != 0 {
			a = a.WithZone(zoneName(s.Scope_id))
		}
		return netip.AddrPortFrom(a, getPort(&s.Port))
	}
	return netip.AddrPort{}
}

// zoneNames caches the names of interfaces by index, for link-local
// sources: looking one up lists every interface.
var zoneNames sync.Map // uint32 → string

// zoneName names the interface with index id, or gives the index.
func zoneName(id uint32) string {
	if name, ok := zoneNames.Load(id); ok {
		return name.(string)
	}
	name := strconv.FormatUint(uint64(id), 10)
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		name = ifi.Name
	}
	zoneNames.Store(id, name)
	return name
}

// errNoSource is a datagram read without an IPv4 or IPv6 source, which a
// UDP socket does not return.
var errNoSource = errors.New("datagram without an IP source")

// udpAddr is a net.UDPAddr with room for its IP: one allocation a
// datagram, as net.UDPConn's read makes.
type udpAddr struct {
	a  net.UDPAddr
	ip [16]byte
}

// fromSockaddr returns the source in sa as net.UDPConn's ReadFrom would:
// 4 bytes of IP from an IPv4 socket, 16 from an IPv6 one.
func fromSockaddr(sa *unix.RawSockaddrAny) net.Addr {
	ap := sockaddrAddrPort(sa)
	if !ap.IsValid() {
		return nil
	}
	u := new(udpAddr)
	if a := ap.Addr(); a.Is4() {
		v4 := a.As4()
		copy(u.ip[:], v4[:])
		u.a.IP = u.ip[:4]
	} else {
		u.ip = a.As16()
		u.a.IP = u.ip[:]
		u.a.Zone = a.Zone()
	}
	u.a.Port = int(ap.Port())
	return &u.a
}

// opError wraps err as net.UDPConn's methods do.
func (c *rawUDP) opError(op string, addr net.Addr, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}
