package engine

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
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
