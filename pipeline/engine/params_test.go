package engine

import (
	"strconv"
	"strings"
	"testing"
)

// manyParams returns n parameters ";p0;p1;...", each a name of its own
// (sipgo's list searches for the name before it adds one).
func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(";p" + strconv.Itoa(i))
	}
	return b.String()
}

// paramsRequest returns an OPTIONS whose Request-URI, Via, To, From or
// extra header fields are changed by the functions given.
func paramsRequest(uri, via, to, from, extra string) []byte {
	return []byte("OPTIONS sip:bob@example.com" + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds" + via + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"To: <sip:bob@example.com>" + to + "\r\n" +
		"From: <sip:alice@example.com>;tag=1928301774" + from + "\r\n" +
		"Call-ID: a84b4c76e66710\r\n" +
		"CSeq: 1 OPTIONS\r\n" + extra +
		"Content-Length: 0\r\n\r\n")
}

// TestParamLimit: a value with more than sip.ParseMaxHeaderParams (100)
// parameters is refused by the engine's parser, whatever the header, and
// the request gets 400 with a reason that names where they are.
func TestParamLimit(t *testing.T) {
	tests := []struct {
		what   string
		msg    []byte
		reason string // "" when the message parses
	}{
		{"plain", paramsRequest("", "", "", "", ""), ""},
		{"100 in a Via", paramsRequest("", manyParams(99), "", "", ""), ""},
		{"101 in a Via", paramsRequest("", manyParams(100), "", "", ""), "too many parameters in Via"},
		{"8000 in a Via", paramsRequest("", manyParams(8000), "", "", ""), "too many parameters in Via"},
		{"100 in a To", paramsRequest("", "", manyParams(100), "", ""), ""},
		{"101 in a To", paramsRequest("", "", manyParams(101), "", ""), "too many parameters in To"},
		{"8000 in a To", paramsRequest("", "", manyParams(8000), "", ""), "too many parameters in To"},
		{"8000 in a To, after a comma", paramsRequest("", "", ";a,"+manyParams(8000), "", ""), "too many parameters in To"},
		{"8000 in a To, quoted", paramsRequest("", "", `;a="`+manyParams(8000)+`"`, "", ""), "too many parameters in To"},
		{"8000 in a To's URI", []byte(strings.Replace(string(paramsRequest("", "", "", "", "")), "bob@example.com>", "bob@example.com"+manyParams(8000)+">", 1)),
			"too many parameters in To"},
		{"8000 in a From", paramsRequest("", "", "", manyParams(8000), ""), "too many parameters in From"},
		{"8000 in a compact From", []byte(strings.Replace(string(paramsRequest("", "", "", manyParams(8000), "")), "\r\nFrom:", "\r\nf:", 1)),
			"too many parameters in From"},
		{"8000 in a Request-URI", paramsRequest(manyParams(8000), "", "", "", ""), "too many parameters in the Request-URI"},
		{"8000 in a Contact", paramsRequest("", "", "", "", "Contact: <sip:alice@192.0.2.10>"+manyParams(8000)+"\r\n"),
			"too many parameters in Contact"},
		{"8000 in the second Contact", paramsRequest("", "", "", "", "m: <sip:alice@192.0.2.10>;a, <sip:alice@192.0.2.11>"+manyParams(8000)+"\r\n"),
			"too many parameters in Contact"},
		{"three Contacts of 90", paramsRequest("", "", "", "", "Contact: "+strings.Repeat("<sip:alice@192.0.2.10>"+manyParams(90)+", ", 2)+
			"\"a, b\" <sip:alice@192.0.2.10>"+manyParams(90)+"\r\n"), ""},
		{"8000 in a Referred-By", paramsRequest("", "", "", "", "Referred-By: <sip:carol@example.com>"+manyParams(8000)+"\r\n"),
			"too many parameters in Referred-By"},
		{"8000 in an unknown header", paramsRequest("", "", "", "", "X-Params: a"+manyParams(8000)+"\r\n"), ""},
	}
	for i, tc := range tests {
		_, err := newParser().ParseSIP(tc.msg)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("test %d (%s): %v, want it parsed", i, tc.what, err)
		case tc.reason != "" && err == nil:
			t.Errorf("test %d (%s): parsed, want it refused", i, tc.what)
		case err != nil:
			if code, reason := badRequest(tc.msg, err.Error()); code != 400 || reason != "Bad Request: "+tc.reason {
				t.Errorf("test %d (%s): %d %s, want 400 Bad Request: %s", i, tc.what, code, reason, tc.reason)
			}
		}
	}
}

func TestSemicolons(t *testing.T) {
	tests := []struct {
		text  string
		list  bool
		limit int
		want  int
	}{
		{"<sip:a@b;lr>;tag=1", false, 100, 2},
		{"<sip:a@b>;a, <sip:c@d>;b;c", false, 100, 3},
		{"<sip:a@b>;a, <sip:c@d>;b;c", true, 100, 1},
		{"<sip:a@b;x,y>;a;b, <sip:c@d>;c", true, 100, 3},
		{`"a, b" <sip:a@b>;a, <sip:c@d>;b`, true, 100, 1},
		{`<sip:a@b>;a="x;y;z"`, false, 100, 3},
		{";;;;;;;;", false, 3, 4},
	}
	for i, tc := range tests {
		if got := semicolons(tc.text, tc.list, tc.limit); got != tc.want {
			t.Errorf("test %d (%q, list %v): %d, want %d", i, tc.text, tc.list, got, tc.want)
		}
	}
}
