package engine

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/dialog"
)

func TestAdmit(t *testing.T) {
	callee := dialog.End{Target: "sip:alice@192.0.2.2:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.2:5060"), Transport: "UDP"}
	viaProxy := callee
	viaProxy.Next = "sip:192.0.2.9:5060;transport=udp"
	refreshed := callee
	refreshed.Refresh("sip:alice@198.51.100.7:5060;transport=udp")
	confirmed := dialog.Dialog{Confirmed: true}
	early := dialog.Dialog{}
	ended := dialog.Dialog{Confirmed: true, Ended: true}
	tests := []struct {
		name string
		msg  string
		d    dialog.Dialog
		to   dialog.End
		code int
	}{
		{"to the callee", "BYE sip:alice@192.0.2.2 SIP/2.0", confirmed, callee, 0},
		{"a PRACK in an early dialog", "PRACK sip:alice@192.0.2.2 SIP/2.0", early, callee, 0},
		{"a BYE in an early dialog", "BYE sip:alice@192.0.2.2 SIP/2.0", early, callee, 0},
		{"a re-INVITE in an early dialog", "INVITE sip:alice@192.0.2.2 SIP/2.0", early, callee, 403},
		{"an ACK in an early dialog", "ACK sip:alice@192.0.2.2 SIP/2.0", early, callee, 403},
		{"to a gateway", "INVITE sip:+19005550100@198.51.100.1 SIP/2.0", confirmed, callee, 403},
		{"to another user at the callee's address", "INVITE sip:+19005550100@192.0.2.2 SIP/2.0", confirmed, callee, 403},
		{"to the Contact a refresh replaced", "INFO sip:alice@192.0.2.2 SIP/2.0", confirmed, refreshed, 0},
		{"to the new Contact", "INFO sip:alice@198.51.100.7 SIP/2.0", confirmed, refreshed, 0},
		{"a Route to another host after ours", "INVITE sip:alice@192.0.2.2 SIP/2.0\r\nRoute: <sip:198.51.100.1;lr>", confirmed, callee, 403},
		{"the next proxy's Route", "INVITE sip:alice@192.0.2.2 SIP/2.0\r\nRoute: <sip:192.0.2.9;lr>", confirmed, viaProxy, 0},
		{"without the next proxy's Route", "INVITE sip:alice@192.0.2.2 SIP/2.0", confirmed, viaProxy, 403},
		{"an INVITE after the BYE", "INVITE sip:alice@192.0.2.2 SIP/2.0", ended, callee, 481},
		{"a NOTIFY after the BYE (a transfer's last)", "NOTIFY sip:alice@192.0.2.2 SIP/2.0", ended, callee, 0},
		{"a crossing BYE", "BYE sip:alice@192.0.2.2 SIP/2.0", ended, callee, 0},
	}
	for i, tc := range tests {
		if code, reason := admit(inDialogRequest(t, tc.msg), &tc.d, tc.to); code != tc.code {
			t.Errorf("test %d (%s): %d %q, want %d", i, tc.name, code, reason, tc.code)
		}
	}
}

// inDialogRequest parses a request line, with optional headers, as a
// request in a dialog.
func inDialogRequest(t *testing.T, lines string) *sip.Request {
	t.Helper()
	method := strings.Fields(lines)[0]
	msg, err := sip.ParseMessage([]byte(lines + "\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:bob@a>;tag=1\r\nTo: <sip:alice@b>;tag=2\r\nCall-ID: x\r\nCSeq: 2 " + method + "\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatalf("%q: %v", lines, err)
	}
	return msg.(*sip.Request)
}

// TestRefusalLevel: an ACK in a dialog that ended is logged at debug; any
// other request in it, or one the dialog forbids, as a warning.
func TestRefusalLevel(t *testing.T) {
	ended := dialog.Dialog{Confirmed: true, Ended: true}
	early := dialog.Dialog{}
	tests := []struct {
		what string
		req  string
		d    dialog.Dialog
		want slog.Level
	}{
		{"the ACK of a 2xx retransmitted after the BYE", "ACK sip:alice@192.0.2.2 SIP/2.0", ended, slog.LevelDebug},
		{"an INVITE after the BYE (a replay)", "INVITE sip:alice@192.0.2.2 SIP/2.0", ended, slog.LevelWarn},
		{"an ACK in an early dialog", "ACK sip:alice@192.0.2.2 SIP/2.0", early, slog.LevelWarn},
		{"an INVITE to a gateway", "INVITE sip:+19005550100@198.51.100.1 SIP/2.0", dialog.Dialog{Confirmed: true}, slog.LevelWarn},
	}
	callee := dialog.End{Target: "sip:alice@192.0.2.2:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.2:5060"), Transport: "UDP"}
	for _, tc := range tests {
		req := inDialogRequest(t, tc.req)
		code, _ := admit(req, &tc.d, callee)
		if got := refusalLevel(req, code); got != tc.want {
			t.Errorf("%s: refused %d, logged at %v, want %v", tc.what, code, got, tc.want)
		}
	}
}
