package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
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

// TestDialogTokenPooled checks that the pooled HMAC gives the same tokens
// as a new one, whatever key the pool's last one had.
func TestDialogTokenPooled(t *testing.T) {
	reference := func(key []byte, callID, tag string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(callID + "\x00" + tag))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
	}
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef"), []byte("another key, another deployment"), nil}
	for i := range 30 {
		key := keys[i%len(keys)]
		callID, tag := fmt.Sprintf("call-%d", i), fmt.Sprintf("tag%d", i%4)
		if got, want := DialogToken(key, callID, tag), reference(key, callID, tag); got != want {
			t.Errorf("round %d (key %q): %q, want %q", i, key, got, want)
		}
	}
}
