package capture

import (
	"encoding/binary"
	"errors"
)

// The generic chunk types of HEP v3 (vendor 0) that Packet fills, from
// the HEP3 Network Protocol Specification.
const (
	chunkFamily      = 0x0001 // IP protocol family: 2 IPv4, 10 IPv6
	chunkProto       = 0x0002 // IP protocol: 17 UDP, 6 TCP
	chunkSrcIPv4     = 0x0003
	chunkDstIPv4     = 0x0004
	chunkSrcIPv6     = 0x0005
	chunkDstIPv6     = 0x0006
	chunkSrcPort     = 0x0007
	chunkDstPort     = 0x0008
	chunkSeconds     = 0x0009
	chunkMicros      = 0x000a // microseconds past the seconds
	chunkProtoType   = 0x000b // 1: SIP
	chunkCaptureID   = 0x000c
	chunkAuthKey     = 0x000e
	chunkPayload     = 0x000f
	chunkCorrelation = 0x0011 // internal correlation ID: the Call-ID
)

// The values of the family, protocol and protocol-type chunks.
const (
	familyIPv4   = 2
	familyIPv6   = 10
	protoUDP     = 17
	protoTCP     = 6
	protoTypeSIP = 1
)

// ErrTooLarge is returned for a message that does not fit the 16-bit
// length of a HEP packet or of an IP datagram.
var ErrTooLarge = errors.New("message too large to capture")

// HEP is what a HEP packet carries besides the message.
type HEP struct {
	// CaptureID is the capture agent ID.
	CaptureID uint32
	// AuthKey is the authentication key; empty leaves the chunk out.
	AuthKey string
}

// Append appends p to dst as one HEP v3 packet: "HEP3", its total length,
// then the chunks (vendor, type, length including the 6-byte chunk header,
// value), all big-endian. callID goes in the correlation chunk unless
// empty. HEP has no chunk for TLS or WebSocket: those go as TCP.
func (h HEP) Append(dst []byte, p *Packet, callID string) ([]byte, error) {
	start := len(dst)
	dst = append(dst, "HEP3\x00\x00"...)
	src, dstIP, v4 := p.family()
	if v4 {
		dst = chunk8(dst, chunkFamily, familyIPv4)
	} else {
		dst = chunk8(dst, chunkFamily, familyIPv6)
	}
	if stream(p.Transport) {
		dst = chunk8(dst, chunkProto, protoTCP)
	} else {
		dst = chunk8(dst, chunkProto, protoUDP)
	}
	if v4 {
		dst = chunkBytes(dst, chunkSrcIPv4, src.AsSlice())
		dst = chunkBytes(dst, chunkDstIPv4, dstIP.AsSlice())
	} else {
		dst = chunkBytes(dst, chunkSrcIPv6, src.AsSlice())
		dst = chunkBytes(dst, chunkDstIPv6, dstIP.AsSlice())
	}
	dst = chunk16(dst, chunkSrcPort, p.Src.Port())
	dst = chunk16(dst, chunkDstPort, p.Dst.Port())
	dst = chunk32(dst, chunkSeconds, uint32(p.Time.Unix()))
	dst = chunk32(dst, chunkMicros, uint32(p.Time.Nanosecond()/1000))
	dst = chunk8(dst, chunkProtoType, protoTypeSIP)
	dst = chunk32(dst, chunkCaptureID, h.CaptureID)
	if h.AuthKey != "" {
		dst = chunkBytes(dst, chunkAuthKey, []byte(h.AuthKey))
	}
	if callID != "" {
		dst = chunkBytes(dst, chunkCorrelation, []byte(callID))
	}
	dst = chunkBytes(dst, chunkPayload, p.Payload)
	n := len(dst) - start
	if n > 0xffff {
		return dst[:start], ErrTooLarge
	}
	binary.BigEndian.PutUint16(dst[start+4:], uint16(n))
	return dst, nil
}

func chunkHeader(dst []byte, typ uint16, size int) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 0) // generic vendor
	dst = binary.BigEndian.AppendUint16(dst, typ)
	return binary.BigEndian.AppendUint16(dst, uint16(6+size))
}

func chunk8(dst []byte, typ uint16, v uint8) []byte {
	return append(chunkHeader(dst, typ, 1), v)
}

func chunk16(dst []byte, typ uint16, v uint16) []byte {
	return binary.BigEndian.AppendUint16(chunkHeader(dst, typ, 2), v)
}

func chunk32(dst []byte, typ uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(chunkHeader(dst, typ, 4), v)
}

// chunkBytes appends a chunk of any length: one too long for its 16-bit
// length makes the packet too long too, which Append refuses.
func chunkBytes(dst []byte, typ uint16, v []byte) []byte {
	return append(chunkHeader(dst, typ, len(v)), v...)
}
