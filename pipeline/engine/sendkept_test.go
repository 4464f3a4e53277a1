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

// TestSendKept checks the send of a non-INVITE's final response from the
// table of completed transactions: the bytes kept reach the phone and
// sipgo's server transaction ends at once; where sendKept cannot send (no
// UDP socket, a destination that is no address and port, a response too
// large for UDP) it sends nothing and leaves the transaction to sipgo's
// Respond.
func TestSendKept(t *testing.T) {
	proxy := listenUDP(t, "127.0.0.1")
	defer proxy.Close()
	phone := listenUDP(t, "127.0.0.1")
	defer phone.Close()
	tests := []struct {
		name string
		conn sip.Connection
		dest string
		body int // bytes of body
		sent bool
	}{
		{"a 200 to a phone over UDP", &sip.UDPConnection{PacketConn: proxy, Listener: true}, phone.LocalAddr().String(), 0, true},
		{"a destination that is a host name", &sip.UDPConnection{PacketConn: proxy, Listener: true}, "phone.example.org:5060", 0, false},
		{"a destination without a port", &sip.UDPConnection{PacketConn: proxy, Listener: true}, "127.0.0.1:0", 0, false},
		{"a response too large for UDP", &sip.UDPConnection{PacketConn: proxy, Listener: true}, phone.LocalAddr().String(), sip.UDPMTUSize, false},
		{"no UDP socket", nil, phone.LocalAddr().String(), 0, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := stagetest.Request(t, "REGISTER sip:example.org SIP/2.0\nVia: SIP/2.0/UDP "+phone.LocalAddr().String()+";branch=z9hG4bK-kept\nFrom: <sip:alice@example.org>;tag=a\nTo: <sip:alice@example.org>\nCall-ID: kept\nCSeq: 1 REGISTER\n")
			req.SetTransport("UDP")
			tx := sip.NewServerTx("kept", req, tc.conn, slog.New(slog.DiscardHandler))
			if err := tx.Init(); err != nil {
				t.Fatal(err)
			}
			defer tx.Terminate()
			res := sip.NewResponseFromRequest(req, 200, "OK THANKS", []byte(strings.Repeat("b", tc.body)))
			res.SetDestination(tc.dest)
			kept := newCompleted(time.Minute).add(uint64(i), sip.REGISTER, res, time.Now())
			if string(kept) != res.String() {
				t.Fatalf("completed kept\n%s\nwant the response\n%s", kept, res)
			}
			tr := &transaction{req: req, tx: tx, log: slog.New(slog.DiscardHandler)}
			if sent := tr.sendKept(res, kept); sent != tc.sent {
				t.Fatalf("sendKept reported %v, want %v", sent, tc.sent)
			}
			ended := errors.Is(tx.Err(), sip.ErrTransactionTerminated)
			if ended != tc.sent {
				t.Errorf("sipgo's transaction ended: %v, want %v", ended, tc.sent)
			}
			got := readDatagram(phone, tc.sent)
			if tc.sent && string(got) != string(kept) {
				t.Errorf("the phone got\n%s\nwant the bytes kept\n%s", got, kept)
			}
			if !tc.sent && got != nil {
				t.Errorf("the phone got a datagram where none was sent:\n%s", got)
			}
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
