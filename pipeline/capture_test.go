package pipeline

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestCaptured(t *testing.T) {
	m, err := sip.NewParser().ParseSIP([]byte("INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	invite := m.(*sip.Request)
	options := invite.Clone()
	options.Method = sip.OPTIONS
	options.CSeq().MethodName = sip.OPTIONS
	tests := []struct {
		when string
		msg  sip.Message // nil: a message that did not parse
		want bool
	}{
		{"", invite, true},
		{"", nil, true},
		{`cseq.method != "OPTIONS"`, invite, true},
		{`cseq.method != "OPTIONS"`, options, false},
		{`from.user == "alice" && call_id == "c1"`, invite, true},
		{`cseq.method != "OPTIONS"`, nil, false},
	}
	for i, tc := range tests {
		toml := "[[stage]]\nuse = 'test_echo'\n"
		if tc.when != "" {
			toml = "[capture]\nwhen = '" + tc.when + "'\n" + toml
		}
		p, err := build(t, toml)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		env := func() *Env {
			if tc.msg == nil {
				return nil
			}
			return p.MessageEnv(tc.msg)
		}
		if got := p.Captured(env); got != tc.want {
			t.Errorf("test %d: Captured = %v, want %v", i, got, tc.want)
		}
	}
	if _, err := build(t, "[capture]\nwhen = 'method == 1'\n[[stage]]\nuse = 'test_echo'\n"); err == nil ||
		!strings.Contains(err.Error(), "c.toml: capture: when: unknown name method") {
		t.Errorf("a rule that does not compile: %v", err)
	}
}
