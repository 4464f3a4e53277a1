package stun

import (
	"net/netip"
	"testing"
)

// FuzzParse checks that any datagram parses or fails without a panic, and
// that the answer to one that parses parses again, with the address it was
// sent from.
func FuzzParse(f *testing.F) {
	f.Add(NewBindingRequest(rfc5769ID, false))
	f.Add(NewBindingRequest(rfc5769ID, true))
	f.Add(unhex(f, rfc5769Request))
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n"))
	from := netip.MustParseAddrPort("198.51.100.7:40000")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		out, ok := Answer(m, from)
		if !ok {
			return
		}
		res, err := Parse(out)
		if err != nil {
			t.Fatalf("answer %x to %x does not parse: %v", out, data, err)
		}
		if res.Type == BindingSuccess {
			if got, ok := res.XORMappedAddress(); !ok || got != from {
				t.Fatalf("answer maps %v, want %v", got, from)
			}
		}
	})
}
