package engine

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/stun"
)

// TestEngineAnswersSTUN sends STUN Binding requests to the proxy's SIP UDP
// port and checks the answers: a success response with the phone's own
// address as XOR-MAPPED-ADDRESS, a 420 for an attribute the proxy must
// understand and does not, and no answer to what is not a request. A SIP
// OPTIONS sent after them is still answered: the socket reads on.
func TestEngineAnswersSTUN(t *testing.T) {
	c := newCore(t, lookupChain)
	conn := listenUDP(t, "127.0.0.1")
	dst, err := net.ResolveUDPAddr("udp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	id := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	withUnknown := append(stun.NewBindingRequest(id, false), 0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4)
	withUnknown[3] = 8
	response := stun.NewBindingRequest(id, false)
	response[0] = 0x01 // 0x0101, a Binding success response
	tests := []struct {
		name string
		data []byte
		typ  uint16 // 0: no answer
	}{
		{"plain", stun.NewBindingRequest(id, false), stun.BindingSuccess},
		{"fingerprint", stun.NewBindingRequest(id, true), stun.BindingSuccess},
		{"unknown attribute", withUnknown, stun.BindingError},
		{"a response", response, 0},
	}
	buf := make([]byte, 1500)
	for i, tc := range tests {
		if _, err := conn.WriteToUDP(tc.data, dst); err != nil {
			t.Fatal(err)
		}
		if tc.typ == 0 {
			// Checked below: the OPTIONS' answer is the next datagram.
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(coreWait))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("test %d (%s): %v", i, tc.name, err)
		}
		res, err := stun.Parse(buf[:n])
		if err != nil {
			t.Fatalf("test %d (%s): answer %x: %v", i, tc.name, buf[:n], err)
		}
		if res.Type != tc.typ || res.TransactionID != id {
			t.Errorf("test %d (%s): answer type %#x id %x", i, tc.name, res.Type, res.TransactionID)
		}
		if tc.typ != stun.BindingSuccess {
			continue
		}
		want := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		if got, ok := res.XORMappedAddress(); !ok || got != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
			t.Errorf("test %d (%s): XOR-MAPPED-ADDRESS %v, want %v", i, tc.name, got, want)
		}
	}
	opts := "OPTIONS " + c.uri("") + " SIP/2.0\r\nVia: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bKstun1\r\n" +
		"From: <sip:a@example.org>;tag=1\r\nTo: <" + c.uri("") + ">\r\nCall-ID: stun-after\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.WriteToUDP([]byte(opts), dst); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(coreWait))
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if stun.Is(buf[:n]) || string(buf[:8]) != "SIP/2.0 " {
		t.Errorf("after the STUN requests, got %q, want the answer to OPTIONS", buf[:n])
	}
}
