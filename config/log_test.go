package config

import (
	"strings"
	"testing"
)

func TestLogOutput(t *testing.T) {
	tests := []struct {
		toml       string
		wantErr    string // "" when the file is valid
		wantOutput string
		wantSocket string
	}{
		{"", "", "stderr", ""},
		{"output = 'file'\nfile = 'switchboard.log'", "", "file", ""},
		{"output = 'syslog'", "", "syslog", DefaultSyslogSocket},
		{"output = 'journald'", "", "journald", DefaultJournaldSocket},
		{"output = 'syslog'\nsocket = '/tmp/x.sock'", "", "syslog", "/tmp/x.sock"},
		{"output = 'file'", `c.toml:1:2: log: file: needed with output = "file"`, "", ""},
		{"file = 'x.log'", `c.toml:2:1: log: file: set, but output is "stderr"`, "", ""},
		{"output = 'stdout'", `c.toml:2:1: log: output: "stdout" is not one of stderr, file, syslog, journald`, "", ""},
		{"socket = '/dev/log'", `c.toml:2:1: log: socket: set, but output is "stderr", not syslog or journald`, "", ""},
	}
	for i, tc := range tests {
		f, err := Parse("c.toml", []byte("[log]\n"+tc.toml+"\n[[stage]]\nuse='forward'\n"))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("test %d: error %v, want %q", i, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if f.Log.Output != tc.wantOutput || f.Log.Socket != tc.wantSocket {
			t.Errorf("test %d: output %q socket %q, want %q %q", i, f.Log.Output, f.Log.Socket, tc.wantOutput, tc.wantSocket)
		}
	}
}
