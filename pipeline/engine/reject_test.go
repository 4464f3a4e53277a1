package engine

import (
	"net"
	"net/netip"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestMayAnswer checks where a stateless answer may go: not to an address
// that is no unicast host's, nor to one of the proxy's own sockets of the
// same kind, which would be the proxy answering itself.
func TestMayAnswer(t *testing.T) {
	e := &Engine{svc: &pipeline.Services{LocalAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}}
	for _, s := range []pipeline.Socket{
		{Transport: "UDP", Addr: netip.MustParseAddrPort("127.0.0.1:5060")},
		{Transport: "TCP", Addr: netip.MustParseAddrPort("127.0.0.1:40001")},
		{Transport: "UDP", Addr: netip.MustParseAddrPort("0.0.0.0:5080")},
	} {
		e.sockets = append(e.sockets, boundSocket{Socket: s})
	}
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	tests := []struct {
		what string
		from net.Addr
		want bool
	}{
		{"a phone", udp("192.0.2.7:5060"), true},
		{"the proxy's own UDP socket", udp("127.0.0.1:5060"), false},
		{"the proxy's own port on another loopback address", udp("127.0.0.2:5060"), false},
		{"a UDP port numbered as the proxy's TCP one", udp("127.0.0.1:40001"), true},
		{"the proxy's own TCP port", tcp("127.0.0.1:40001"), false},
		{"a TCP port numbered as the proxy's UDP one", tcp("127.0.0.1:5060"), true},
		{"a wildcard socket's port from a local address", udp("192.0.2.10:5080"), false},
		{"a wildcard socket's port from another host", udp("192.0.2.11:5080"), true},
		{"port 0", udp("192.0.2.7:0"), false},
		{"unspecified", udp("0.0.0.0:5060"), false},
		{"multicast", udp("224.0.1.75:5060"), false},
		{"broadcast", udp("255.255.255.255:5060"), false},
		{"none", nil, false},
	}
	for _, tc := range tests {
		if got := e.mayAnswer(tc.from); got != tc.want {
			t.Errorf("%s (%v): %v, want %v", tc.what, tc.from, got, tc.want)
		}
	}
}
