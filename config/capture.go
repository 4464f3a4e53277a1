package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// Capture is the [capture] section: HEP v3 export of SIP messages to a
// Homer collector, and a pcap file for each traced call. It applies on
// reload.
type Capture struct {
	// Address is the collector, "udp://host:port" or "tcp://host:port";
	// empty sends no HEP.
	Address string `toml:"address"`
	// CaptureID is the capture agent ID each HEP packet carries, which
	// tells a collector's users which proxy saw the message.
	CaptureID int64 `toml:"capture_id"`
	// AuthKey is the HEP authentication key (the collector's password).
	AuthKey string `toml:"auth_key"`
	// When, an expr rule on the message, samples what is sent: empty
	// sends every message.
	When string `toml:"when"`
	// Pcap writes a pcap file for each call the message trace covers
	// ([log] trace_messages and trace_when), in PcapDir.
	Pcap bool `toml:"pcap"`
	// PcapDir is the folder of the pcap files; relative paths are taken
	// from the config file's folder. Default: DefaultPcapDir.
	PcapDir string `toml:"pcap_dir"`
}

// DefaultPcapDir is where the pcap files of traced calls go when
// capture.pcap_dir is not set: "pcap" in base, the folder relative paths
// are resolved against.
func DefaultPcapDir(base string) string {
	return filepath.Join(base, "pcap")
}

// defaults fills pcap_dir and makes it absolute against base.
func (c *Capture) defaults(base string) {
	if c.PcapDir == "" {
		c.PcapDir = DefaultPcapDir(base)
	} else if !filepath.IsAbs(c.PcapDir) {
		c.PcapDir = filepath.Join(base, c.PcapDir)
	}
}

// Validate returns one error per mistake, each starting with the key.
func (c *Capture) Validate() []error {
	var errs []error
	if c.Address != "" {
		if _, _, err := CaptureAddress(c.Address); err != nil {
			errs = append(errs, fmt.Errorf("address: %w", err))
		}
	}
	if c.CaptureID < 0 || c.CaptureID > 1<<32-1 {
		errs = append(errs, fmt.Errorf("capture_id: %d is not between 0 and 4294967295", c.CaptureID))
	}
	if len(c.AuthKey) > 256 {
		errs = append(errs, fmt.Errorf("auth_key: longer than 256 bytes"))
	}
	return errs
}

// CaptureAddress splits a collector address, "udp://host:port" or
// "tcp://host:port", into its network and host:port.
func CaptureAddress(s string) (network, hostport string, err error) {
	network, hostport, ok := strings.Cut(s, "://")
	if !ok || (network != "udp" && network != "tcp") {
		return "", "", fmt.Errorf("%q is not udp://host:port or tcp://host:port", s)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return "", "", fmt.Errorf("%q is not udp://host:port or tcp://host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: port %q is not between 1 and 65535", s, port)
	}
	return network, hostport, nil
}
