package capture

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// unhex reads hex written with spaces between the chunks.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHEPAppend(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	tests := []struct {
		hep    HEP
		p      Packet
		callID string
		want   string
	}{
		{ // IPv4 over UDP, with an auth key and a Call-ID
			hep: HEP{CaptureID: 2001, AuthKey: "k"},
			p: Packet{Time: at, Transport: "UDP", Payload: []byte("X"),
				Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5062")},
			callID: "c1",
			want: `48455033 0073
				0000 0001 0007 02
				0000 0002 0007 11
				0000 0003 000a 0a000001
				0000 0004 000a 0a000002
				0000 0007 0008 13c4
				0000 0008 0008 13c6
				0000 0009 000a 6553f100
				0000 000a 000a 0001e240
				0000 000b 0007 01
				0000 000c 000a 000007d1
				0000 000e 0007 6b
				0000 0011 0008 6331
				0000 000f 0007 58`,
		},
		{ // IPv6 over TLS: TCP, no key, no Call-ID
			hep: HEP{CaptureID: 1},
			p: Packet{Time: time.Unix(1, 1000), Transport: "TLS", Payload: []byte("Y"),
				Src: netip.MustParseAddrPort("[::1]:5061"), Dst: netip.MustParseAddrPort("[2001:db8::1]:40000")},
			want: `48455033 007c
				0000 0001 0007 0a
				0000 0002 0007 06
				0000 0005 0016 00000000000000000000000000000001
				0000 0006 0016 20010db8000000000000000000000001
				0000 0007 0008 13c5
				0000 0008 0008 9c40
				0000 0009 000a 00000001
				0000 000a 000a 00000001
				0000 000b 0007 01
				0000 000c 000a 00000001
				0000 000f 0007 59`,
		},
		{ // IPv4 to IPv6 over WSS: the IPv4 address mapped, TCP
			p: Packet{Time: time.Unix(0, 0), Transport: "WSS", Payload: []byte("Z"),
				Src: netip.MustParseAddrPort("127.0.0.1:443"), Dst: netip.MustParseAddrPort("[::1]:1")},
			want: `48455033 007c
				0000 0001 0007 0a
				0000 0002 0007 06
				0000 0005 0016 00000000000000000000ffff7f000001
				0000 0006 0016 00000000000000000000000000000001
				0000 0007 0008 01bb
				0000 0008 0008 0001
				0000 0009 000a 00000000
				0000 000a 000a 00000000
				0000 000b 0007 01
				0000 000c 000a 00000000
				0000 000f 0007 5a`,
		},
	}
	for i, tc := range tests {
		got, err := tc.hep.Append([]byte("prefix"), &tc.p, tc.callID)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		want := append([]byte("prefix"), unhex(t, tc.want)...)
		if string(got) != string(want) {
			t.Errorf("test %d:\n got %x\nwant %x", i, got, want)
		}
	}
}

func TestHEPTooLarge(t *testing.T) {
	p := Packet{Transport: "TCP", Payload: make([]byte, 65535),
		Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2")}
	got, err := HEP{}.Append([]byte("keep"), &p, "")
	if !errors.Is(err, ErrTooLarge) || string(got) != "keep" {
		t.Errorf("got %d bytes, %v; want ErrTooLarge and the prefix alone", len(got), err)
	}
}
