package ratelimit_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
	"github.com/switchboard-sip/switchboard/stages/ratelimit"
)

// TestReadme checks README.md's sections and builds its examples, with the
// users file of testdata.
func TestReadme(t *testing.T) {
	stagetest.CheckReadme(t, "README.md", stagetest.WithConfigPath("testdata/config.toml"))
}

// TestAuthFailuresBan runs the auth stage behind ratelimit: a source that
// answers challenges with wrong passwords is banned, and its packets are
// dropped, while another source's are not.
func TestAuthFailuresBan(t *testing.T) {
	h := stagetest.Chain(t, `
[[stage]]
use           = "ratelimit"
window        = "1m"
auth_failures = 3

[[stage]]
use   = "auth"
realm = "example.org"
users = "users.txt"
`, stagetest.WithConfigPath("testdata/config.toml"))
	guesser := netip.MustParseAddrPort("198.51.100.66:5060")
	phone := netip.MustParseAddrPort("198.51.100.3:5060")
	for i := 1; i <= 3; i++ {
		if !h.Pipeline.AllowPacket(guesser, "UDP") {
			t.Fatalf("guess %d: dropped before the third failure", i)
		}
		raw := fmt.Sprintf(`
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/UDP 198.51.100.66:5060;branch=z9hG4bK%d
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:alice@example.org>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: %d REGISTER
Authorization: Digest username="alice", realm="example.org", nonce="x", uri="sip:example.org", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="y"
`, i, i)
		res := h.Request(stagetest.Request(t, raw), stagetest.From(guesser.String()))
		if res.Verdict != pipeline.Replied || res.Code() != 401 {
			t.Fatalf("guess %d: %s", i, res)
		}
	}
	if h.Pipeline.AllowPacket(guesser, "UDP") {
		t.Error("the guesser is not banned after 3 failures")
	}
	if !h.Pipeline.AllowPacket(phone, "UDP") {
		t.Error("the phone is banned")
	}
	v, ok := h.Services.Shared.Load(ratelimit.StateKey)
	if !ok {
		t.Fatal("no State shared")
	}
	if n := v.(*ratelimit.State).Stats.AuthBans.Load(); n != 1 {
		t.Errorf("%d auth bans, want 1", n)
	}
}
