package engine

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"testing"
)

func TestReadRawRequest(t *testing.T) {
	tests := []struct {
		data                    string
		ok                      bool
		method, uri             string
		vias                    []string
		from, to, callID, cseq  string
		contentLength, bodyText string
	}{
		{
			data: "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nv: SIP/2.0/UDP h2, SIP/2.0/UDP h3\r\nf: <sip:b@example.com>;tag=1\r\nt: <sip:a@example.com>\r\ni: abc\r\nCSeq: 1 INVITE\r\nl: 4\r\n\r\nbody",
			ok:   true, method: "INVITE", uri: "sip:a@example.com",
			vias: []string{"SIP/2.0/UDP h1;branch=z9hG4bK1", "SIP/2.0/UDP h2, SIP/2.0/UDP h3"},
			from: "<sip:b@example.com>;tag=1", to: "<sip:a@example.com>", callID: "abc", cseq: "1 INVITE",
			contentLength: "4", bodyText: "body",
		},
		{
			// wsinv.dat's style: names in any case, spaces before the colon, folded values.
			data: "INVITE  sip:a@example.com  SIP/2.0 \r\nTO :\r\n sip:a@example.com ;   tag    = 1\r\nvIa  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\ncseq: 0009\r\n  INVITE\r\nCALL-ID: x\r\n\r\n",
			ok:   true, method: "INVITE", uri: "sip:a@example.com",
			vias: []string{"SIP / 2.0 /UDP 192.0.2.2;branch=390skdjuw"},
			to:   "sip:a@example.com ; tag = 1", callID: "x", cseq: "0009 INVITE",
		},
		{
			// LF alone; no empty line (baddn.dat); control characters.
			data: "OPTIONS sip:a@example.com SIP/2.0\nVia: SIP/2.0/UDP h1\x00;branch=1\nCSeq: 2 OPTIONS\nl: 0\n",
			ok:   true, method: "OPTIONS", uri: "sip:a@example.com",
			vias: []string{"SIP/2.0/UDP h1 ;branch=1"}, cseq: "2 OPTIONS", contentLength: "0",
		},
		{data: "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h1\r\nCSeq: 1 INVITE\r\n\r\n"},              // a response
		{data: "INVITE sip:a@example.com SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", method: "INVITE"}, // no Via
		{data: "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h1\r\n\r\n", method: "INVITE"},
		{data: "\x00\x01\x02 garbage\r\nVia: SIP/2.0/UDP h1\r\nCSeq: 1 INVITE\r\n\r\n"}, // no method
		{data: ""},
	}
	for i, tc := range tests {
		r, ok := readRawRequest([]byte(tc.data))
		if ok != tc.ok {
			t.Errorf("test %d: ok %v, want %v", i, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		got := []string{r.method, r.uri, strings.Join(r.vias, "|"), r.from, r.to, r.callID, r.cseq, r.contentLength, tc.data[r.body:]}
		want := []string{tc.method, tc.uri, strings.Join(tc.vias, "|"), tc.from, tc.to, tc.callID, tc.cseq, tc.contentLength, tc.bodyText}
		for j := range got {
			if got[j] != want[j] {
				t.Errorf("test %d: field %d is %q, want %q", i, j, got[j], want[j])
			}
		}
	}
}

func TestRawParam(t *testing.T) {
	tests := []struct {
		value, name, want string
		ok                bool
	}{
		{"<sip:a@example.com>;tag=1", "tag", "1", true},
		{`"J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8`, "tag", "98asjd8", true},
		{`"J Rosenberg \\\"" <sip:jdrosen@example.com>; ; tag =" 98asjd8"`, "tag", "98asjd8", true}, // as sipgo writes it again
		{"<sip:a@example.com;tag=uri>", "tag", "", false},
		{`"a;tag=quoted" <sip:a@example.com>`, "tag", "", false},
		{"<sip:a@example.com>;tagx=1;TAG=2", "tag", "2", true},
		{"sip:a@example.com, <sip:b@example.com>;tag=2", "tag", "", false}, // another value
		{"SIP/2.0/UDP h;rport;branch=1", "rport", "", true},
		{"SIP/2.0/UDP h;rport=5060", "rport", "5060", true},
	}
	for i, tc := range tests {
		got, ok := rawParam(tc.value, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("test %d: rawParam(%q, %q) = %q, %v, want %q, %v", i, tc.value, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRawResponse(t *testing.T) {
	from := netip.MustParseAddrPort("192.0.2.7:5071")
	seed := maphash.MakeSeed()
	tests := []struct {
		data string
		want []string
	}{
		{
			data: "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h1;rport;branch=z9hG4bK1, SIP/2.0/UDP h0\r\nVia: SIP/2.0/TCP h2\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: \"A <sip:a@example.com>\r\nCall-ID: abc\r\nCSeq: 99999999999 INVITE\r\n\r\n",
			want: []string{
				"SIP/2.0 400 Bad Request: malformed CSeq",
				"Via: SIP/2.0/UDP h1;rport=5071;branch=z9hG4bK1;received=192.0.2.7, SIP/2.0/UDP h0",
				"Via: SIP/2.0/TCP h2",
				"From: <sip:b@example.com>;tag=1",
				"To: \"A <sip:a@example.com>;tag=" + localTag(seed, "abc"),
				"Call-ID: abc",
				"CSeq: 99999999999 INVITE",
				"Content-Length: 0",
			},
		},
		{
			// The branch the proxy gave an RFC 2543 request is not sent back.
			data: string(markRFC2543([]byte("INVITE <sip:a@example.com> SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5\r\nTo: <sip:a@example.com>;tag=2\r\nCSeq: 1 INVITE\r\n\r\n"), nil)),
			want: []string{
				"SIP/2.0 400 Bad Request: malformed CSeq",
				"Via: SIP/2.0/UDP 192.0.2.5",
				"To: <sip:a@example.com>;tag=2",
				"CSeq: 1 INVITE",
				"Content-Length: 0",
			},
		},
	}
	for i, tc := range tests {
		r, ok := readRawRequest([]byte(tc.data))
		if !ok {
			t.Fatalf("test %d: not read", i)
		}
		got := strings.Split(strings.TrimSuffix(rawResponse(r, 400, "Bad Request: malformed CSeq", from, seed).String(), "\r\n\r\n"), "\r\n")
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("test %d: got\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// TestBadRequest checks the status of the answer to every RFC 4475 request
// sipgo cannot parse.
func TestBadRequest(t *testing.T) {
	tests := []struct {
		file, cause string
		code        int
		reason      string
	}{
		{"badinv01.dat", "Malformed protocol name in Via header", 400, "Bad Request: malformed Via"},
		{"clerr.dat", "reading body incomplete", 400, "Bad Request: Content-Length larger than the message"},
		{"ncl.dat", `strconv.ParseUint: parsing "-999": invalid syntax`, 400, "Bad Request: malformed Content-Length"},
		{"scalar02.dat", "value out of range", 400, "Bad Request: malformed CSeq"},
		{"quotbal.dat", "invalid uri display name inside quotes", 400, "Bad Request: malformed To"},
		{"ltgtruri.dat", "invalid uri scheme", 400, "Bad Request: malformed Request-URI"},
		{"lwsruri.dat", "is not a SIP message", 400, "Bad Request: malformed Request-Line"},
		{"lwsstart.dat", "is not a SIP message", 400, "Bad Request: malformed Request-Line"},
		{"trws.dat", "is not a SIP message", 400, "Bad Request: malformed Request-Line"},
		{"badaspec.dat", "invalid uri scheme", 400, "Bad Request: malformed To"},
		{"baddn.dat", "EOF on reading line", 400, "Bad Request: no empty line after the header fields"},
		{"novelsc.dat", "invalid uri scheme", 416, "Unsupported URI Scheme"},
		{"lwsdisp.dat", "what\x00sipgo \"said\"" + strings.Repeat("x", 100), 400, "Bad Request: what sipgo  said " + strings.Repeat("x", 43)},
	}
	for i, tc := range tests {
		code, reason := badRequest(torture(t, tc.file), tc.cause)
		if code != tc.code || reason != tc.reason {
			t.Errorf("test %d (%s): %d %q, want %d %q", i, tc.file, code, reason, tc.code, tc.reason)
		}
	}
}
