package config

import (
	"strings"
	"testing"
)

func TestCheckHTTPListen(t *testing.T) {
	listens := []string{"udp://0.0.0.0:8080", "tcp://127.0.0.1:5060", "ws://0.0.0.0:8088", "tls://[::1]:5061"}
	tests := []struct {
		http string
		want string
	}{
		{"127.0.0.1:8080", ""}, // UDP 8080 is another socket
		{"127.0.0.1:5060", `server.listen[1] "tcp://127.0.0.1:5060"`},
		{"127.0.0.2:5060", ""},
		{"127.0.0.1:8088", `server.listen[2] "ws://0.0.0.0:8088"`},
		{"0.0.0.0:5061", `server.listen[3] "tls://[::1]:5061"`},
		{"[::1]:5061", `server.listen[3]`},
		{"", ""},
	}
	for _, tc := range tests {
		err := CheckHTTPListen(listens, tc.http)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.http, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want one naming %s", tc.http, err, tc.want)
		}
	}
}
