package engine

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestNotSent checks the answer kept for a branch that could not be sent:
// a failed write to a flow's connection is a flow gone (480, or 430 for an
// RFC 5626 flow), whatever sipgo's error says; other failures are 503.
func TestNotSent(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "bob", Host: "example.org"})
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "192.0.2.1", Params: sip.NewParams()})
	callID := sip.CallIDHeader("c")
	req.AppendHeader(&callID)
	flow := pipeline.Target{Destination: "203.0.113.2:44745", Transport: "WS"}
	outbound := flow
	outbound.Instance = "<urn:uuid:00000000-0000-0000-0000-000000000001>"
	udp := pipeline.Target{Destination: "203.0.113.2:5060", Transport: "UDP"}
	writeErr := errors.New("conn 203.0.113.2:44745 write: broken pipe")
	tests := []struct {
		name   string
		target pipeline.Target
		err    error
		want   int
	}{
		{"flow gone before the write", flow, errFlowGone, 480},
		{"write to a flow failed", flow, writeErr, 480},
		{"write to an RFC 5626 flow failed", outbound, writeErr, 430},
		{"no socket for the transport", flow, errNoSocket("WS"), 503},
		{"UDP write failed", udp, writeErr, 503},
	}
	for _, tc := range tests {
		tx := &transaction{req: req, log: slog.New(slog.DiscardHandler)}
		tx.notSent(tc.target, tc.err)
		if len(tx.finals) != 1 || tx.finals[0].StatusCode != tc.want {
			t.Errorf("%s: finals %v, want one %d", tc.name, tx.finals, tc.want)
		}
	}
}
