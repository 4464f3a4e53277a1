package engine

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestMarkReceived(t *testing.T) {
	tests := []struct {
		via, src string
		want     string // received afterwards, "" for none
	}{
		{"SIP/2.0/TCP attacker.example:5060;branch=z9hG4bK1", "192.0.2.7", "192.0.2.7"},
		{"SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bK1", "192.0.2.7", "192.0.2.7"},
		{"SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK1", "192.0.2.7", ""},
		{"SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK1;received=198.51.100.1", "192.0.2.7", "192.0.2.7"},
		{"SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1", "2001:db8::1", ""},
		{"SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1", "2001:db8::2", "2001:db8::2"},
	}
	for i, tc := range tests {
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "example.org"})
		req.AppendHeader(sip.NewHeader("Via", tc.via))
		msg, err := sip.ParseMessage([]byte(req.String()))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		req = msg.(*sip.Request)
		markReceived(req, netip.MustParseAddr(tc.src))
		got, _ := req.Via().Params.Get("received")
		if got != tc.want {
			t.Errorf("test %d: received %q, want %q (Via %s)", i, got, tc.want, req.Via().Value())
		}
	}
}
