package engine

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestInviteKey checks that a CANCEL finds its INVITE (RFC 3261 9.2) and
// no other: by branch and sent-by, and for an RFC 2543 client (no magic
// cookie) also by Request-URI, From tag, Call-ID and CSeq number.
func TestInviteKey(t *testing.T) {
	const invite = "INVITE sip:bob@example.org SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=BRANCH\r\n" +
		"From: <sip:alice@example.org>;tag=FROMTAG\r\n" +
		"To: <sip:bob@example.org>\r\n" +
		"Call-ID: CALLID\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Content-Length: 0\r\n\r\n"
	parse := func(raw string) *sip.Request {
		t.Helper()
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		return msg.(*sip.Request)
	}
	cancel := func(branch string, edits ...string) *sip.Request {
		raw := strings.Replace(invite, "BRANCH", branch, 1)
		raw = strings.Replace(raw, "INVITE sip:", "CANCEL sip:", 1)
		raw = strings.Replace(raw, "1 INVITE", "1 CANCEL", 1)
		for i := 0; i+1 < len(edits); i += 2 {
			raw = strings.Replace(raw, edits[i], edits[i+1], 1)
		}
		return parse(raw)
	}
	tests := []struct {
		name   string
		branch string
		cancel *sip.Request
		match  bool
	}{
		{"RFC 3261", "z9hG4bK74bf9", cancel("z9hG4bK74bf9"), true},
		{"RFC 3261, another branch", "z9hG4bK74bf9", cancel("z9hG4bK74bfa"), false},
		{"RFC 3261, another sent-by", "z9hG4bK74bf9", cancel("z9hG4bK74bf9", "192.0.2.10:5060", "192.0.2.11:5060"), false},
		{"RFC 3261, the branch is enough", "z9hG4bK74bf9", cancel("z9hG4bK74bf9", "CALLID", "OTHER"), true},
		{"RFC 2543", "74bf9", cancel("74bf9"), true},
		{"RFC 2543, no branch", "", cancel(""), true},
		{"RFC 2543, another Call-ID", "", cancel("", "CALLID", "OTHER"), false},
		{"RFC 2543, another From tag", "", cancel("", "FROMTAG", "OTHER"), false},
		{"RFC 2543, another CSeq", "", cancel("", "CSeq: 1", "CSeq: 2"), false},
		{"RFC 2543, another Request-URI", "", cancel("", "CANCEL sip:bob@", "CANCEL sip:carol@"), false},
	}
	for _, tc := range tests {
		raw := invite
		if tc.branch == "" {
			raw = strings.Replace(raw, ";branch=BRANCH", "", 1)
			tc.cancel.Via().Params.Remove("branch")
		}
		inv := parse(strings.Replace(raw, "BRANCH", tc.branch, 1))
		if got := inviteKey(inv) == inviteKey(tc.cancel); got != tc.match {
			t.Errorf("%s: match %v, want %v (%q, %q)", tc.name, got, tc.match, inviteKey(inv), inviteKey(tc.cancel))
		}
	}
}
