package pipeline

import (
	"strings"
	"testing"
)

func TestDialogSigned(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	req := parseReq(t, invite) // Call-ID c1, From tag a1, no To tag
	token := DialogToken(key, "c1", "a1")
	callee := parseReq(t, strings.NewReplacer("From: \"Alice\" <sip:alice@example.org>;tag=a1", "From: <sip:bob@example.org>;tag=b2",
		"To: <sip:bob@example.org>", "To: <sip:alice@example.org>;tag=a1").Replace(invite))
	tests := []struct {
		name  string
		key   []byte
		token string
		want  bool
	}{
		{"caller's direction", key, token, true},
		{"empty token", key, "", false},
		{"another dialog", key, DialogToken(key, "c2", "a1"), false},
		{"another key", []byte("another key, another deployment"), token, false},
	}
	for i, tc := range tests {
		if got := DialogSigned(tc.key, req, tc.token); got != tc.want {
			t.Errorf("test %d (%s): %v", i, tc.name, got)
		}
	}
	if !DialogSigned(key, callee, token) {
		t.Error("the callee's direction (the caller's tag in To) is not signed")
	}
}
