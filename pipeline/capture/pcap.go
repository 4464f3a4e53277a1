package capture

import (
	"encoding/binary"
)

// linkTypeRaw is LINKTYPE_RAW: each record starts with an IPv4 or IPv6
// header, told apart by its version.
const linkTypeRaw = 101

// snapLen is the pcap files' snapshot length: larger than any message.
const snapLen = 262144

// PcapHeader returns the global header of a pcap file (libpcap 2.4,
// microsecond timestamps, little-endian) of raw IP packets.
func PcapHeader() []byte {
	b := make([]byte, 0, 24)
	b = binary.LittleEndian.AppendUint32(b, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0) // thiszone: UTC
	b = binary.LittleEndian.AppendUint32(b, 0) // sigfigs
	b = binary.LittleEndian.AppendUint32(b, snapLen)
	return binary.LittleEndian.AppendUint32(b, linkTypeRaw)
}

// AppendPcap appends p to dst as one pcap record: the record header, then
// a synthetic IP header and UDP header, then the message. Every message
// is written as a UDP datagram, whatever its transport (a message read
// over TCP, TLS or a WebSocket is whole here, which synthetic TCP segments
// would only split again); its Via still names the real transport.
func AppendPcap(dst []byte, p *Packet) ([]byte, error) {
	src, dstIP, v4 := p.family()
	ipLen := 40
	if v4 {
		ipLen = 20
	}
	udpLen := 8 + len(p.Payload)
	if udpLen > 0xffff || (v4 && ipLen+udpLen > 0xffff) {
		return dst, ErrTooLarge
	}
	size := uint32(ipLen + udpLen)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(p.Time.Unix()))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(p.Time.Nanosecond()/1000))
	dst = binary.LittleEndian.AppendUint32(dst, size)
	dst = binary.LittleEndian.AppendUint32(dst, size)

	ip := len(dst)
	if v4 {
		dst = append(dst, 0x45, 0)
		dst = binary.BigEndian.AppendUint16(dst, uint16(ipLen+udpLen))
		dst = append(dst, 0, 0, 0x40, 0, 64, protoUDP, 0, 0) // id, DF, TTL, protocol, checksum
		dst = append(dst, src.AsSlice()...)
		dst = append(dst, dstIP.AsSlice()...)
		binary.BigEndian.PutUint16(dst[ip+10:], ^uint16(sum(0, dst[ip:ip+20])))
	} else {
		dst = append(dst, 0x60, 0, 0, 0)
		dst = binary.BigEndian.AppendUint16(dst, uint16(udpLen))
		dst = append(dst, protoUDP, 64)
		dst = append(dst, src.AsSlice()...)
		dst = append(dst, dstIP.AsSlice()...)
	}
	udp := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, p.Src.Port())
	dst = binary.BigEndian.AppendUint16(dst, p.Dst.Port())
	dst = binary.BigEndian.AppendUint16(dst, uint16(udpLen))
	dst = append(dst, 0, 0)
	dst = append(dst, p.Payload...)

	// The UDP checksum covers a pseudo-header of the addresses, the
	// protocol and the length (RFC 768, RFC 8200 8.1).
	s := sum(0, src.AsSlice())
	s = sum(s, dstIP.AsSlice())
	s += protoUDP + uint32(udpLen)
	c := ^uint16(sum(s, dst[udp:]))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(dst[udp+6:], c)
	return dst, nil
}

// sum adds b to the one's-complement sum s, as 16-bit big-endian words,
// and folds the carries.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}
