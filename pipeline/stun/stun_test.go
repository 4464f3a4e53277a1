package stun

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// unhex reads the hex of an RFC 5769 test vector, spaces and newlines
// ignored.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfc5769ID is the transaction ID of RFC 5769's test vectors.
var rfc5769ID = [12]byte{0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae}

// rfc5769Request is the sample request of RFC 5769 section 2.1, with
// SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY and
// FINGERPRINT.
const rfc5769Request = `
00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
00 24 00 04 6e 00 01 ff
80 29 00 08 93 2f f9 b1 51 26 3b 36
00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
80 28 00 04 e5 7a 3b cf`

func TestParse(t *testing.T) {
	req := NewBindingRequest(rfc5769ID, false)
	fp := NewBindingRequest(rfc5769ID, true)
	badFP := slices.Clone(fp)
	badFP[len(badFP)-1] ^= 1
	tests := []struct {
		name  string
		data  []byte
		err   error
		attrs []uint16
	}{
		{"plain request", req, nil, nil},
		{"with fingerprint", fp, nil, []uint16{AttrFingerprint}},
		{"RFC 5769 2.1", unhex(t, rfc5769Request), nil, []uint16{AttrSoftware, 0x0024, 0x8029, 0x0006, 0x0008, AttrFingerprint}},
		{"wrong fingerprint", badFP, ErrMalformed, nil},
		{"SIP", []byte("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n"), ErrNotSTUN, nil},
		{"keepalive CRLF", []byte("\r\n\r\n"), ErrNotSTUN, nil},
		{"short", req[:19], ErrNotSTUN, nil},
		{"no cookie", append([]byte{0, 1, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...), ErrNotSTUN, nil},
		{"length past the end", append(slices.Clone(req[:2]), append([]byte{0, 4}, req[4:]...)...), ErrMalformed, nil},
		{"length not a multiple of 4", append(append(slices.Clone(req[:2]), 0, 2), append(slices.Clone(req[4:]), 0, 0)...), ErrMalformed, nil},
		{"attribute past the end", append(append(slices.Clone(req[:2]), 0, 4), append(slices.Clone(req[4:]), 0x80, 0x22, 0, 8)...), ErrMalformed, nil},
		{"fingerprint not last", append(append(slices.Clone(fp[:2]), 0, 16), append(slices.Clone(fp[4:]), 0x80, 0x22, 0, 4, 'a', 'b', 'c', 'd')...), ErrMalformed, nil},
	}
	for i, tc := range tests {
		m, err := Parse(tc.data)
		if err != tc.err {
			t.Errorf("test %d (%s): error %v, want %v", i, tc.name, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		var types []uint16
		for _, a := range m.Attrs {
			types = append(types, a.Type)
		}
		if !slices.Equal(types, tc.attrs) || m.TransactionID != rfc5769ID || m.Type != BindingRequest {
			t.Errorf("test %d (%s): type %#x id %x attributes %x, want %#x %x %x", i, tc.name, m.Type, m.TransactionID, types, BindingRequest, rfc5769ID, tc.attrs)
		}
	}
}

func TestAnswer(t *testing.T) {
	tests := []struct {
		name string
		req  []byte
		from netip.AddrPort
		// attr is the XOR-MAPPED-ADDRESS attribute the answer must hold
		// (RFC 5769 2.2 and 2.3), or for a 420 the UNKNOWN-ATTRIBUTES.
		attr  string
		typ   uint16
		fp    bool
		quiet bool
	}{
		{name: "IPv4 (RFC 5769 2.2)", req: NewBindingRequest(rfc5769ID, false), from: netip.MustParseAddrPort("192.0.2.1:32853"),
			attr: "00 20 00 08 00 01 a1 47 e1 12 a6 43", typ: BindingSuccess},
		{name: "IPv6 (RFC 5769 2.3)", req: NewBindingRequest(rfc5769ID, true), from: netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
			attr: "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9", typ: BindingSuccess, fp: true},
		{name: "IPv4-mapped source", req: NewBindingRequest(rfc5769ID, false), from: netip.MustParseAddrPort("[::ffff:192.0.2.1]:32853"),
			attr: "00 20 00 08 00 01 a1 47 e1 12 a6 43", typ: BindingSuccess},
		{name: "ICE request: 420", req: unhex(t, rfc5769Request), from: netip.MustParseAddrPort("192.0.2.1:32853"),
			attr: "00 0a 00 06 00 24 00 06 00 08 00 00", typ: BindingError, fp: true},
		{name: "a response gets nothing", req: unhex(t, "01 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"), quiet: true},
	}
	for i, tc := range tests {
		req, err := Parse(tc.req)
		if err != nil {
			t.Fatalf("test %d (%s): %v", i, tc.name, err)
		}
		out, ok := Answer(req, tc.from)
		if ok == tc.quiet {
			t.Errorf("test %d (%s): answered %v", i, tc.name, ok)
			continue
		}
		if tc.quiet {
			continue
		}
		res, err := Parse(out)
		if err != nil {
			t.Errorf("test %d (%s): the answer does not parse: %v", i, tc.name, err)
			continue
		}
		if res.Type != tc.typ || res.TransactionID != req.TransactionID || res.Has(AttrFingerprint) != tc.fp {
			t.Errorf("test %d (%s): type %#x id %x fingerprint %v", i, tc.name, res.Type, res.TransactionID, res.Has(AttrFingerprint))
		}
		if !bytes.Contains(out, unhex(t, tc.attr)) {
			t.Errorf("test %d (%s): answer %x lacks %s", i, tc.name, out, tc.attr)
		}
		if tc.typ == BindingSuccess {
			if got, ok := res.XORMappedAddress(); !ok || got != netip.AddrPortFrom(tc.from.Addr().Unmap(), tc.from.Port()) {
				t.Errorf("test %d (%s): XOR-MAPPED-ADDRESS %v, want %v", i, tc.name, got, tc.from)
			}
		}
	}
}
