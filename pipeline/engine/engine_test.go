package engine

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestUDPReceiveBuffer checks that the engine asks the kernel for the
// receive buffer configured, and says so when the kernel grants less.
func TestUDPReceiveBuffer(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max: not Linux")
	}
	rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	tests := []struct {
		name  string
		ask   int
		warns bool
	}{
		{name: "within rmem_max", ask: min(rmemMax, 150000)},
		{name: "past rmem_max", ask: rmemMax + 65536, warns: true},
		{name: "kernel default", ask: 0},
	}
	for _, tc := range tests {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		def := receiveBuffer(conn)
		var logs bytes.Buffer
		e := &Engine{UDPReceiveBuffer: tc.ask, log: slog.New(slog.NewTextHandler(&logs, nil))}
		e.setReceiveBuffer(conn, conn.LocalAddr().(*net.UDPAddr).AddrPort())
		got := receiveBuffer(conn)
		conn.Close()
		switch {
		case tc.ask == 0 && got != def:
			t.Errorf("%s: the buffer changed from %d to %d", tc.name, def, got)
		case tc.ask > 0 && !tc.warns && got < tc.ask:
			t.Errorf("%s: asked %d, granted %d", tc.name, tc.ask, got)
		}
		if warned := strings.Contains(logs.String(), "udp receive buffer smaller than asked"); warned != tc.warns {
			t.Errorf("%s: warned %v, want %v (granted %d):\n%s", tc.name, warned, tc.warns, got, logs.String())
		}
	}
}

// TestSetLinger checks that server.linger reaches the sipgo timers that
// keep a transaction waiting for an ACK (D, H), that those that keep a
// transaction only to absorb retransmissions (J, K, L, M) are sipgoAbsorb
// at most (completed absorbs them after), and that none of those that time a
// transaction out changes.
func TestSetLinger(t *testing.T) {
	saved := []time.Duration{sip.Timer_B, sip.Timer_D, sip.Timer_F, sip.Timer_H, sip.Timer_J, sip.Timer_K, sip.Timer_L, sip.Timer_M}
	defer func() {
		sip.Timer_B, sip.Timer_D, sip.Timer_F, sip.Timer_H, sip.Timer_J, sip.Timer_K, sip.Timer_L, sip.Timer_M =
			saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6], saved[7]
	}()
	tests := []struct {
		linger     time.Duration
		wantD      time.Duration
		wantH      time.Duration
		wantAbsorb time.Duration // J, K, L and M
	}{
		{3 * time.Second, 3 * time.Second, 3 * time.Second, sipgoAbsorb},
		// Timer H is at least 4*T1: the final's two sends and a
		// retransmitted INVITE still find the transaction.
		{time.Second, time.Second, 4 * sip.T1, sipgoAbsorb},
		{32 * time.Second, 32 * time.Second, 32 * time.Second, sipgoAbsorb},
		// A linger below sipgoAbsorb is sipgo's too.
		{20 * time.Millisecond, 20 * time.Millisecond, 4 * sip.T1, 20 * time.Millisecond},
	}
	for _, tc := range tests {
		setLinger(tc.linger)
		got := map[string][2]time.Duration{
			"D": {sip.Timer_D, tc.wantD}, "H": {sip.Timer_H, tc.wantH},
			"J": {sip.Timer_J, tc.wantAbsorb}, "K": {sip.Timer_K, tc.wantAbsorb}, "L": {sip.Timer_L, tc.wantAbsorb}, "M": {sip.Timer_M, tc.wantAbsorb},
			"B": {sip.Timer_B, saved[0]}, "F": {sip.Timer_F, saved[2]},
		}
		for name, pair := range got {
			if pair[0] != pair[1] {
				t.Errorf("linger %v: Timer %s = %v, want %v", tc.linger, name, pair[0], pair[1])
			}
		}
	}
}
