// Package stun is the part of STUN (RFC 5389) a SIP proxy needs for the
// UDP keepalive of RFC 5626 section 8: it reads a Binding request and
// writes the Binding success response with XOR-MAPPED-ADDRESS that tells
// a phone the address its NAT gave it, or the 420 error a request with
// attributes it must understand gets.
package stun

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
)

// Message types, methods and attributes of RFC 5389 used here.
const (
	BindingRequest = 0x0001
	BindingSuccess = 0x0101
	BindingError   = 0x0111

	AttrXORMappedAddress = 0x0020
	AttrErrorCode        = 0x0009
	AttrUnknown          = 0x000A
	AttrSoftware         = 0x8022
	AttrFingerprint      = 0x8028
)

// MagicCookie is the fixed second word of every RFC 5389 message.
const MagicCookie = 0x2112A442

// headerSize is the size of a STUN message header.
const headerSize = 20

// fingerprintXOR is XORed into the CRC-32 of a FINGERPRINT (RFC 5389 15.5).
const fingerprintXOR = 0x5354554e

// Errors of Parse.
var (
	ErrNotSTUN   = errors.New("not a STUN message")
	ErrMalformed = errors.New("malformed STUN message")
)

// Attr is one attribute of a message, its value cut from the message.
type Attr struct {
	Type  uint16
	Value []byte
}

// Message is a STUN message read by Parse.
type Message struct {
	Type          uint16
	TransactionID [12]byte
	Attrs         []Attr
}

// Is reports whether data may be a STUN message and not SIP: its first
// two bits are zero and its second word is the magic cookie. A SIP
// message starts with a letter, so the check is certain for SIP's
// datagrams.
func Is(data []byte) bool {
	return len(data) >= headerSize && data[0]&0xC0 == 0 && binary.BigEndian.Uint32(data[4:8]) == MagicCookie
}

// Parse reads a STUN message: its header, and each attribute, whose sizes
// must add up to the header's length. A FINGERPRINT, when present, must be
// last and hold.
func Parse(data []byte) (Message, error) {
	var m Message
	if !Is(data) {
		return m, ErrNotSTUN
	}
	length := int(binary.BigEndian.Uint16(data[2:4]))
	if length%4 != 0 || len(data) != headerSize+length {
		return m, ErrMalformed
	}
	m.Type = binary.BigEndian.Uint16(data[0:2])
	copy(m.TransactionID[:], data[8:20])
	for off := headerSize; off < len(data); {
		if len(data)-off < 4 {
			return m, ErrMalformed
		}
		t := binary.BigEndian.Uint16(data[off : off+2])
		n := int(binary.BigEndian.Uint16(data[off+2 : off+4]))
		end := off + 4 + n
		if end > len(data) {
			return m, ErrMalformed
		}
		if t == AttrFingerprint {
			if n != 4 || end != len(data) || binary.BigEndian.Uint32(data[off+4:end]) != fingerprint(data[:off]) {
				return m, ErrMalformed
			}
		}
		m.Attrs = append(m.Attrs, Attr{Type: t, Value: data[off+4 : end]})
		off = end + (4-n%4)%4 // attributes are padded to 4 bytes
		if off > len(data) {
			return m, ErrMalformed
		}
	}
	return m, nil
}

// Has reports whether m carries an attribute of type t.
func (m Message) Has(t uint16) bool {
	for _, a := range m.Attrs {
		if a.Type == t {
			return true
		}
	}
	return false
}

// Unknown returns the comprehension-required attributes of m (types below
// 0x8000) that this package does not understand: a server answers a
// request with any of them 420 (RFC 5389 7.3.1).
func (m Message) Unknown() []uint16 {
	var out []uint16
	for _, a := range m.Attrs {
		if a.Type < 0x8000 {
			out = append(out, a.Type)
		}
	}
	return out
}

// XORMappedAddress returns the address of m's XOR-MAPPED-ADDRESS.
func (m Message) XORMappedAddress() (netip.AddrPort, bool) {
	for _, a := range m.Attrs {
		if a.Type != AttrXORMappedAddress {
			continue
		}
		v := a.Value
		if len(v) < 4 {
			return netip.AddrPort{}, false
		}
		port := binary.BigEndian.Uint16(v[2:4]) ^ MagicCookie>>16
		key := m.key()
		switch {
		case v[1] == 1 && len(v) == 8:
			var ip [4]byte
			for i := range ip {
				ip[i] = v[4+i] ^ key[i]
			}
			return netip.AddrPortFrom(netip.AddrFrom4(ip), port), true
		case v[1] == 2 && len(v) == 20:
			var ip [16]byte
			for i := range ip {
				ip[i] = v[4+i] ^ key[i]
			}
			return netip.AddrPortFrom(netip.AddrFrom16(ip), port), true
		}
		return netip.AddrPort{}, false
	}
	return netip.AddrPort{}, false
}

// key is what an address is XORed with: the magic cookie, then the
// transaction ID.
func (m Message) key() [16]byte {
	var k [16]byte
	binary.BigEndian.PutUint32(k[:4], MagicCookie)
	copy(k[4:], m.TransactionID[:])
	return k
}

// Answer returns the response to a Binding request: the success response
// with XOR-MAPPED-ADDRESS from, the address the request came from, or a
// 420 listing the attributes the request needs understood. It has a
// FINGERPRINT when the request had one. ok is false for any other
// message, which gets no answer.
func Answer(req Message, from netip.AddrPort) (res []byte, ok bool) {
	if req.Type != BindingRequest {
		return nil, false
	}
	fp := req.Has(AttrFingerprint)
	if unknown := req.Unknown(); len(unknown) > 0 {
		return unknownAttributes(req, unknown, fp), true
	}
	out := header(BindingSuccess, req.TransactionID)
	addr := from.Addr().Unmap()
	key := req.key()
	family, ip := byte(1), addr.AsSlice()
	if addr.Is6() {
		family = 2
	}
	v := make([]byte, 4+len(ip))
	v[1] = family
	binary.BigEndian.PutUint16(v[2:4], from.Port()^MagicCookie>>16)
	for i := range ip {
		v[4+i] = ip[i] ^ key[i]
	}
	out = appendAttr(out, AttrXORMappedAddress, v)
	return finish(out, fp), true
}

// unknownAttributes is the 420 error response to req (RFC 5389 7.3.1).
func unknownAttributes(req Message, unknown []uint16, fp bool) []byte {
	out := header(BindingError, req.TransactionID)
	reason := "Unknown Attribute"
	code := append([]byte{0, 0, 4, 20}, reason...)
	out = appendAttr(out, AttrErrorCode, code)
	list := make([]byte, 0, 2*len(unknown))
	for _, t := range unknown {
		list = binary.BigEndian.AppendUint16(list, t)
	}
	out = appendAttr(out, AttrUnknown, list)
	return finish(out, fp)
}

// header starts a message of type t with its transaction ID.
func header(t uint16, id [12]byte) []byte {
	out := make([]byte, headerSize, 64)
	binary.BigEndian.PutUint16(out[0:2], t)
	binary.BigEndian.PutUint32(out[4:8], MagicCookie)
	copy(out[8:20], id[:])
	return out
}

// appendAttr appends an attribute, padded to 4 bytes, and sets the
// header's length.
func appendAttr(out []byte, t uint16, v []byte) []byte {
	out = binary.BigEndian.AppendUint16(out, t)
	out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
	out = append(out, v...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)-headerSize))
	return out
}

// finish appends a FINGERPRINT when fp is set, and returns the message.
func finish(out []byte, fp bool) []byte {
	if !fp {
		return out
	}
	// The length counts the FINGERPRINT before its CRC is taken.
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)+8-headerSize))
	crc := fingerprint(out)
	return appendAttr(out, AttrFingerprint, binary.BigEndian.AppendUint32(nil, crc))
}

// fingerprint is the FINGERPRINT value of the message up to it.
func fingerprint(data []byte) uint32 {
	return crc32.ChecksumIEEE(data) ^ fingerprintXOR
}

// NewBindingRequest returns a Binding request with transaction ID id,
// with a FINGERPRINT when fp is set: what a phone sends as its keepalive.
func NewBindingRequest(id [12]byte, fp bool) []byte {
	return finish(header(BindingRequest, id), fp)
}
