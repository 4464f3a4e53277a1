package engine

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"

	"github.com/emiago/sipgo/sip"
)

// The read filter is the engine's packet gate: it runs on each socket's
// reader, before sipgo parses anything, and is where the limits that must
// cost no parse (packet stages such as ratelimit, the message size), the
// CANCEL taken out of sipgo's way and the RFC 2543 marking happen.

// readFilter sees every datagram (and every TCP read) before sipgo parses
// it, on the goroutine that reads the socket.
//
// A UDP or WebSocket (WS, WSS) request larger than [server] max_message_size gets
// 513 unparsed (a WebSocket read is a whole message). Over TCP a read is
// not a message (it may start in the middle of a body), so the limit there
// is sipgo's: it closes the stream past 65535 bytes, and a WebSocket past
// a frame of 65535 bytes.
// A UDP request whose top Via has
// no RFC 3261 branch gets one of the proxy's own (markRFC2543). The last
// datagram of each UDP socket is noted, so that one sipgo fails to parse
// is answered (parseWatch).
//
// A STUN Binding request on a UDP socket is answered there (answerSTUN)
// and goes no further.
//
// It takes CANCEL requests out of sipgo's way so that the 200 to a
// CANCEL and the 487 to the INVITE are the proxy's own, made after the
// response stages, instead of the ones sipgo's transaction layer would
// write directly. A TCP read that does not start with a whole CANCEL is
// left to sipgo, which then answers the CANCEL itself (its 200 skips the
// response stages; the branches are still cancelled through tx.OnCancel),
// or, when it finds no INVITE transaction for it yet, hands it over as a
// request of its own, which handOver matches as it does these.
//
// Over a stream it tells the connection's guard of the read, for the
// header timeout.
//
// It never returns an error for UDP: that would stop the socket's reader.
func (e *Engine) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	stream := info.Transport != "UDP" && info.Transport != "udp"
	if stream {
		e.guard.Read(addrPort(info.RemoteAddr), data)
	}
	p := e.current.Load()
	if p != nil && p.HasPacketStages() {
		if !p.AllowPacket(addrPort(info.RemoteAddr), transportName(info.Transport)) {
			return nil, nil
		}
	}
	if !stream && e.answerSTUN(info.LocalAddr, info.RemoteAddr, data) {
		return nil, nil
	}
	limit := maxMessageSize(p)
	if (!stream || info.Transport == "WS" || info.Transport == "WSS") && len(data) > limit {
		e.tooLarge(info, data, len(data), limit)
		return nil, nil
	}
	if !stream {
		// Before the CANCEL's parse, which the share then charges.
		e.inTurn(info.LocalAddr)
	}
	if bytes.HasPrefix(data, []byte("CANCEL ")) {
		msg, n, err := e.parser.Parse(data, stream)
		if req, ok := msg.(*sip.Request); ok && err == nil && req.IsCancel() {
			req.SetSource(info.RemoteAddr.String())
			req.SetTransport(transportName(info.Transport))
			if stream {
				e.guard.Delivered(addrPort(info.RemoteAddr))
			}
			go e.onCancel(req, info.LocalAddr)
			if !stream || n >= len(data) {
				return nil, nil
			}
			rest := make([]byte, len(data)-n)
			copy(rest, data[n:])
			return rest, nil
		}
	}
	if !stream {
		data = markRFC2543(data, e.answered2543)
		e.sawDatagram(info.LocalAddr, info.RemoteAddr, data)
	}
	return data, nil
}

// inTurn is called on the UDP reader before a datagram is handed on to a
// goroutine of its own (sipgo's for a message, the engine's for a CANCEL):
// every yieldEvery datagrams, it lets the goroutines of the datagrams
// already read run first. A backlog then waits in the socket's queue,
// first in first out, and not in the Go scheduler's, which runs the newest
// goroutine first and puts an overflow of its run queue behind all the
// rest (between calls: within one call, callOrder keeps the order).
// Datagrams the filter drops (a banned source, one too large) do not wait:
// a flood is still read and dropped at full speed. The reader's share
// (readerShare) does not count the wait.
func (e *Engine) inTurn(local net.Addr) {
	if l := e.shares.Load(); l != nil {
		for _, r := range *l {
			if r.local == local {
				r.yield()
				return
			}
		}
	}
	runtime.Gosched()
}

// addrPort returns the address of a UDP or TCP peer.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func transportName(t string) string {
	switch t {
	case "udp", "UDP":
		return "UDP"
	case "tcp", "TCP":
		return "TCP"
	}
	return t
}
