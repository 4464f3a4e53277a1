package resolve

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// readHosts reads a hosts file ("" is /etc/hosts, "-" none) into names
// and their addresses. A missing file is an empty one.
func readHosts(path string) (map[string][]netip.Addr, error) {
	out := map[string][]netip.Addr{}
	if path == "-" {
		return out, nil
	}
	if path == "" {
		path = "/etc/hosts"
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		for _, name := range fields[1:] {
			name = strings.ToLower(strings.TrimSuffix(name, "."))
			out[name] = append(out[name], ip.Unmap())
		}
	}
	return out, sc.Err()
}
