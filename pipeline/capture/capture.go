// Package capture copies SIP messages out of the proxy for people to look
// at: HEP v3 packets to a Homer collector, and pcap files that tshark and
// sngrep read. It encodes both formats itself, frames the reads of stream
// connections into messages, and sends from a goroutine of its own behind
// a bounded queue, so that capture never holds up SIP.
package capture

import (
	"net/netip"
	"time"
)

// Packet is one SIP message as it crossed a socket of the proxy.
type Packet struct {
	// Time is when it was read or written.
	Time time.Time
	// Transport is UDP, TCP, TLS, WS or WSS.
	Transport string
	// Src and Dst are the addresses it went from and to.
	Src, Dst netip.AddrPort
	// Payload is the whole message.
	Payload []byte
}

// family returns the source and destination addresses in one family:
// both IPv4, or both IPv6 (an IPv4 address mapped into IPv6 when the other
// is IPv6).
func (p *Packet) family() (src, dst netip.Addr, v4 bool) {
	src, dst = p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	if !dst.IsValid() {
		dst = netip.IPv4Unspecified()
	}
	if src.Is4() && dst.Is4() {
		return src, dst, true
	}
	if src.Is4() {
		src = netip.AddrFrom16(src.As16())
	}
	if dst.Is4() {
		dst = netip.AddrFrom16(dst.As16())
	}
	return src, dst, false
}

// stream reports whether a transport runs over TCP.
func stream(transport string) bool {
	switch transport {
	case "TCP", "TLS", "WS", "WSS":
		return true
	}
	return false
}
