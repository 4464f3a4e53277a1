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

// TestSetLinger checks that server.linger reaches every sipgo timer that
// keeps a completed transaction, and none of those that time one out.
func TestSetLinger(t *testing.T) {
	saved := []time.Duration{sip.Timer_B, sip.Timer_D, sip.Timer_F, sip.Timer_H, sip.Timer_J, sip.Timer_K, sip.Timer_L, sip.Timer_M}
	defer func() {
		sip.Timer_B, sip.Timer_D, sip.Timer_F, sip.Timer_H, sip.Timer_J, sip.Timer_K, sip.Timer_L, sip.Timer_M =
			saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6], saved[7]
	}()
	setLinger(3 * time.Second)
	for name, got := range map[string]time.Duration{"D": sip.Timer_D, "H": sip.Timer_H, "J": sip.Timer_J, "K": sip.Timer_K, "L": sip.Timer_L, "M": sip.Timer_M} {
		if got != 3*time.Second {
			t.Errorf("Timer %s = %v, want the linger, 3s", name, got)
		}
	}
	// Timer H is at least 4*T1: the final's two sends and a retransmitted
	// INVITE still find the transaction.
	if setLinger(time.Second); sip.Timer_H != 4*sip.T1 {
		t.Errorf("Timer H = %v after a 1s linger, want 4*T1, %v", sip.Timer_H, 4*sip.T1)
	}
	// Timer K is T4 in RFC 3261: a longer linger leaves it there.
	if setLinger(32 * time.Second); sip.Timer_K != sip.T4 {
		t.Errorf("Timer K = %v after a 32s linger, want T4, %v", sip.Timer_K, sip.T4)
	}
	for name, pair := range map[string][2]time.Duration{"B": {sip.Timer_B, saved[0]}, "F": {sip.Timer_F, saved[2]}} {
		if pair[0] != pair[1] {
			t.Errorf("Timer %s changed from %v to %v: it times a transaction out, it does not keep it", name, pair[1], pair[0])
		}
	}
}
