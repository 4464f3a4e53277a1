package config

import (
	"strings"
	"testing"
)

func TestCapture(t *testing.T) {
	tests := []struct {
		section string
		err     string // a part of the error; "" for none
		pcapDir string
	}{
		{section: "", pcapDir: "/etc/sb/pcap"},
		{section: `address = "udp://10.0.0.5:9060"` + "\ncapture_id = 4294967295\nauth_key = \"k\"\nwhen = 'true'\npcap = true\npcap_dir = \"calls\"", pcapDir: "/etc/sb/calls"},
		{section: `address = "tcp://homer.example.org:9061"` + "\npcap_dir = \"/var/pcap\"", pcapDir: "/var/pcap"},
		{section: `address = "udp://[::1]:9060"`, pcapDir: "/etc/sb/pcap"},
		{section: `address = "http://10.0.0.5:9060"`, err: `capture: address: "http://10.0.0.5:9060" is not udp://host:port or tcp://host:port`},
		{section: `address = "udp://10.0.0.5"`, err: "capture: address:"},
		{section: `address = "udp://:9060"`, err: "capture: address:"},
		{section: `address = "udp://10.0.0.5:70000"`, err: `port "70000" is not between 1 and 65535`},
		{section: "capture_id = -1", err: "capture: capture_id: -1 is not between 0 and 4294967295"},
		{section: "capture_id = 4294967296", err: "capture: capture_id:"},
		{section: `auth_key = "` + strings.Repeat("k", 257) + `"`, err: "capture: auth_key: longer than 256 bytes"},
		{section: `adress = "udp://10.0.0.5:9060"`, err: "capture: adress"},
		{section: `pcap = "yes"`, err: "capture: pcap"},
	}
	for i, tc := range tests {
		f, err := Parse("/etc/sb/config.toml", []byte("[capture]\n"+tc.section+"\n\n[[stage]]\nuse = 'forward'\n"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("test %d: error %v, want one with %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if f.Capture.PcapDir != tc.pcapDir {
			t.Errorf("test %d: pcap_dir %q, want %q", i, f.Capture.PcapDir, tc.pcapDir)
		}
	}
}
