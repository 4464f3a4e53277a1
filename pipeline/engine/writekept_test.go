package engine

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// TestWriteKept checks the send of a non-INVITE's final response from the
// table of completed transactions: the bytes kept reach the phone and
// sipgo's server transaction ends at once, and a socket that is not a
// listener stays open for the write and is closed only when nothing else
// holds it; where writeKept cannot send (no UDP socket, a destination that
// is no address and port, a response too large for UDP) it sends nothing
// and leaves the transaction to sipgo's Respond.
func TestWriteKept(t *testing.T) {
	phone := listenUDP(t, "127.0.0.1")
	defer phone.Close()
	to := phone.LocalAddr().String()
	tests := []struct {
		name     string
		listener bool
		refs     int // the socket's references before, the transaction's among them
		nilConn  bool
		dest     string
		body     int // bytes of body
		sent     bool
		refsLeft int // after; 0 for a socket that is not a listener: closed
	}{
		{name: "a 200 to a phone over UDP", listener: true, refs: 1, dest: to, sent: true},
		{name: "a socket only the transaction held", refs: 1, dest: to, sent: true},
		{name: "a socket held elsewhere too", refs: 2, dest: to, sent: true, refsLeft: 1},
		{name: "a destination that is a host name", listener: true, refs: 1, dest: "phone.example.org:5060", refsLeft: 1},
		{name: "a destination without a port", listener: true, refs: 1, dest: "127.0.0.1:0", refsLeft: 1},
		{name: "a response too large for UDP", listener: true, refs: 1, dest: to, body: sip.UDPMTUSize, refsLeft: 1},
		{name: "no UDP socket", nilConn: true, dest: to},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy := listenUDP(t, "127.0.0.1")
			defer proxy.Close()
			udp := &sip.UDPConnection{PacketConn: proxy, Listener: tc.listener}
			udp.Ref(tc.refs)
			var conn sip.Connection = udp
			if tc.nilConn {
				conn = nil
			}
			req := stagetest.Request(t, "REGISTER sip:example.org SIP/2.0\nVia: SIP/2.0/UDP "+to+";branch=z9hG4bK-kept\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:alice@example.org>\nCall-ID: kept\nCSeq: 1 REGISTER\n")
			req.SetTransport("UDP")
			tx := sip.NewServerTx("kept", req, conn, slog.New(slog.DiscardHandler))
			if err := tx.Init(); err != nil {
				t.Fatal(err)
			}
			res := sip.NewResponseFromRequest(req, 200, "OK THANKS", []byte(strings.Repeat("b", tc.body)))
			kept := newCompleted(time.Minute).add(uint64(i), sip.REGISTER, res, time.Now())
			if string(kept) != res.String() {
				t.Fatalf("completed kept\n%s\nwant the response\n%s", kept, res)
			}
			sent, err := writeKept(tx, kept, tc.dest)
			if sent != tc.sent || err != nil {
				t.Fatalf("writeKept reported %v, %v; want %v, no error", sent, err, tc.sent)
			}
			ended := errors.Is(tx.Err(), sip.ErrTransactionTerminated)
			if ended != tc.sent {
				t.Errorf("sipgo's transaction ended: %v, want %v", ended, tc.sent)
			}
			if !tc.nilConn {
				if left := udp.Ref(0); left != tc.refsLeft {
					t.Errorf("the socket has %d references left, want %d", left, tc.refsLeft)
				}
			}
			got := readDatagram(phone, tc.sent)
			if tc.sent && string(got) != string(kept) {
				t.Errorf("the phone got\n%s\nwant the bytes kept\n%s", got, kept)
			}
			if !tc.sent && got != nil {
				t.Errorf("the phone got a datagram where none was sent:\n%s", got)
			}
			tx.Terminate()
		})
	}
}

// readDatagram reads the next datagram of pc: within a second when one is
// expected, and when none is, whatever came already (the sender wrote
// before the read, on loopback, so nothing is still on its way).
func readDatagram(pc *net.UDPConn, expected bool) []byte {
	wait := time.Millisecond
	if expected {
		wait = time.Second
	}
	pc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
