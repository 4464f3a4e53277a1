package capture

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPcapHeader(t *testing.T) {
	want := unhex(t, "d4c3b2a1 0200 0400 00000000 00000000 00000400 65000000")
	if got := PcapHeader(); string(got) != string(want) {
		t.Errorf("got %x, want %x", got, want)
	}
}

// The expected records were made apart from this code, with Python's
// struct module and its own checksum.
func TestAppendPcap(t *testing.T) {
	tests := []struct {
		p    Packet
		want string
	}{
		{
			p: Packet{Time: time.Unix(1700000000, 123456000), Transport: "UDP", Payload: []byte("OPTIONS"),
				Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5062")},
			want: `00f15365 40e20100 23000000 23000000
				4500002300004000401126c80a0000010a000002
				13c413c6000f7e5b 4f5054494f4e53`,
		},
		{
			p: Packet{Time: time.Unix(1700000000, 1000), Transport: "TLS", Payload: []byte("SIP/2.0 200 OK"),
				Src: netip.MustParseAddrPort("[::1]:5061"), Dst: netip.MustParseAddrPort("[2001:db8::1]:40000")},
			want: `00f15365 01000000 3e000000 3e000000
				6000000000161140 00000000000000000000000000000001 20010db8000000000000000000000001
				13c59c4000166a9f 5349502f322e3020323030204f4b`,
		},
	}
	for i, tc := range tests {
		got, err := AppendPcap(nil, &tc.p)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if want := unhex(t, tc.want); string(got) != string(want) {
			t.Errorf("test %d:\n got %x\nwant %x", i, got, want)
		}
	}
	big := Packet{Payload: make([]byte, 65535-27), Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2")}
	if _, err := AppendPcap(nil, &big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a message past an IPv4 datagram: got %v, want ErrTooLarge", err)
	}
}
