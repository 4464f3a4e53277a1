package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/dialog"
)

func TestAdmit(t *testing.T) {
	caller := dialog.End{Target: "sip:bob@192.0.2.1:5060;transport=udp", Source: netip.MustParseAddr("192.0.2.1")}
	callee := dialog.End{Target: "sip:alice@192.0.2.2:5060;transport=udp", Source: netip.MustParseAddr("192.0.2.2")}
	viaProxy := callee
	viaProxy.Next = "sip:192.0.2.9:5060;transport=udp"
	tests := []struct {
		name      string
		msg       string
		src       string
		confirmed bool
		to        dialog.End
		want      string
	}{
		{"to the callee", "BYE sip:alice@192.0.2.2 SIP/2.0", "192.0.2.1", true, callee, ""},
		{"a PRACK in an early dialog", "PRACK sip:alice@192.0.2.2 SIP/2.0", "192.0.2.1", false, callee, ""},
		{"a re-INVITE in an early dialog", "INVITE sip:alice@192.0.2.2 SIP/2.0", "192.0.2.1", false, callee, "the dialog is not established"},
		{"from another address", "BYE sip:alice@192.0.2.2 SIP/2.0", "203.0.113.7", true, callee, "not sent by an end of the dialog"},
		{"to a gateway", "INVITE sip:+19005550100@198.51.100.1 SIP/2.0", "192.0.2.1", true, callee, "not addressed to an end of the dialog"},
		{"to another user at the callee's address", "INVITE sip:+19005550100@192.0.2.2 SIP/2.0", "192.0.2.1", true, callee, "not addressed to an end of the dialog"},
		{"a Route to another host after ours", "INVITE sip:alice@192.0.2.2 SIP/2.0\r\nRoute: <sip:198.51.100.1;lr>", "192.0.2.1", true, callee, "Route does not lead to an end of the dialog"},
		{"the next proxy's Route", "INVITE sip:alice@192.0.2.2 SIP/2.0\r\nRoute: <sip:192.0.2.9;lr>", "192.0.2.1", true, viaProxy, ""},
		{"without the next proxy's Route", "INVITE sip:alice@192.0.2.2 SIP/2.0", "192.0.2.1", true, viaProxy, "Route does not lead to an end of the dialog"},
	}
	for i, tc := range tests {
		msg, err := sip.ParseMessage([]byte(tc.msg + "\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:bob@a>;tag=1\r\nTo: <sip:alice@b>;tag=2\r\nCall-ID: x\r\nCSeq: 2 " + strings.Fields(tc.msg)[0] + "\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		req := msg.(*sip.Request)
		if got := admit(req, netip.MustParseAddr(tc.src), tc.confirmed, caller, tc.to); got != tc.want {
			t.Errorf("test %d (%s): %q, want %q", i, tc.name, got, tc.want)
		}
	}
}
