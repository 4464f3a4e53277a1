package stagetest

import (
	"fmt"
	"strings"
	"testing"
)

// fakeT records a fatal failure instead of ending the test, for testing
// the helpers' failures.
type fakeT struct {
	testing.TB
	fatal    string
	cleanups []func()
}

// fatalError is what fakeT.Fatalf panics with, to stop the helper as
// t.Fatalf would.
type fatalError struct{}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(fatalError{})
}

func (f *fakeT) Errorf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// fails runs fn with a fakeT and returns the message it failed with, or "".
func fails(fn func(t testing.TB)) (msg string) {
	f := &fakeT{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalError); !ok {
				panic(r)
			}
		}
		for _, c := range f.cleanups {
			c()
		}
		msg = f.fatal
	}()
	fn(f)
	return ""
}

const optionsText = `
OPTIONS sip:example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1
From: <sip:alice@example.org>;tag=1
To: <sip:example.org>
Call-ID: o1
CSeq: 1 OPTIONS
Max-Forwards: 70
`

func TestRequest(t *testing.T) {
	tests := []struct {
		raw    string
		length string // the Content-Length header's value
		body   string
	}{
		// 0: LF line ends, no blank line, no Content-Length.
		{raw: optionsText, length: "0"},
		// 1: CRLF line ends, blank line.
		{raw: strings.ReplaceAll(strings.TrimLeft(optionsText, "\n"), "\n", "\r\n") + "\r\n", length: "0"},
		// 2: a body without Content-Length gets one, with CRLF line ends.
		{raw: optionsText + "Content-Type: application/sdp\n\nv=0\ns=-\n", length: "10", body: "v=0\r\ns=-\r\n"},
		// 3: a right Content-Length is kept.
		{raw: optionsText + "Content-Length: 5\n\nhello", length: "5", body: "hello"},
		// 4: so is a compact one.
		{raw: optionsText + "l: 5\n\nhello", length: "5", body: "hello"},
		// 5: blank lines after the headers are no body.
		{raw: optionsText + "\n\n\n", length: "0"},
	}
	for i, tc := range tests {
		req := Request(t, tc.raw)
		if got := req.ContentLength(); got == nil || got.Value() != tc.length {
			t.Errorf("test %d: Content-Length %v, want %s", i, got, tc.length)
		}
		if string(req.Body()) != tc.body {
			t.Errorf("test %d: body %q, want %q", i, req.Body(), tc.body)
		}
		if req.CallID().Value() != "o1" || req.Recipient.Host != "example.org" {
			t.Errorf("test %d: parsed wrong:\n%s", i, req)
		}
	}
}

func TestResponse(t *testing.T) {
	res := Response(t, `
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1
From: <sip:alice@example.org>;tag=1
To: <sip:bob@example.org>;tag=2
Call-ID: c1
CSeq: 1 INVITE
`)
	if res.StatusCode != 180 || res.Reason != "Ringing" || res.ContentLength().Value() != "0" {
		t.Errorf("parsed wrong:\n%s", res)
	}
}

func TestMessageFailures(t *testing.T) {
	tests := []struct {
		fn   func(t testing.TB)
		want string
	}{
		{func(t testing.TB) { Request(t, optionsText+"Content-Length: 3\n\nhello") }, "Content-Length is 3 but the body has 5 bytes"},
		{func(t testing.TB) { Request(t, optionsText+"Content-Length: x\n") }, `Content-Length "x" is not a number`},
		{func(t testing.TB) { Request(t, "  \n") }, "the text is empty"},
		{func(t testing.TB) { Request(t, optionsText+"Not a header\n") }, `line 8 of the message: "Not a header" is not a header`},
		{func(t testing.TB) { Request(t, "HELLO\nVia: x\n") }, "the text is not a SIP message"},
		{func(t testing.TB) { Request(t, "SIP/2.0 200 OK\nCSeq: 1 OPTIONS\n") }, "the text is a response, not a request"},
		{func(t testing.TB) { Response(t, optionsText) }, "the text is a request, not a response"},
	}
	for i, tc := range tests {
		got := fails(tc.fn)
		if !strings.Contains(got, tc.want) {
			t.Errorf("test %d: failed with %q, want %q", i, got, tc.want)
		}
	}
}
