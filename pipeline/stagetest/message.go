package stagetest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// Request builds a request from raw SIP text, failing the test with the
// text and the parser's error when it does not parse. See Message for how
// the text is read.
func Request(t testing.TB, raw string) *sip.Request {
	t.Helper()
	msg := Message(t, raw)
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("stagetest: the text is a response, not a request:\n%s", raw)
	}
	return req
}

// Response builds a response from raw SIP text, failing the test with the
// text and the parser's error when it does not parse. See Message for how
// the text is read.
func Response(t testing.TB, raw string) *sip.Response {
	t.Helper()
	msg := Message(t, raw)
	res, ok := msg.(*sip.Response)
	if !ok {
		t.Fatalf("stagetest: the text is a request, not a response:\n%s", raw)
	}
	return res
}

// Message builds a request or a response from raw SIP text, as written in
// a Go raw string literal:
//
//   - leading blank lines are ignored, so the text may start on the line
//     after the opening backquote;
//   - lines may end in LF or CRLF: every line end becomes CRLF, in the body
//     too (SDP lines end in CRLF);
//   - the headers end at the first blank line; what follows is the body.
//     Text with no blank line, or only blank lines after it, has no body;
//   - a message without Content-Length gets one that matches its body
//     (0 without one). A Content-Length the text gives is kept as it is,
//     and one that does not match the body fails the test: the helper
//     never hides a mistake in the text.
//
// It fails the test with the text and the parser's error when the message
// does not parse.
func Message(t testing.TB, raw string) sip.Message {
	t.Helper()
	text, err := normalize(raw)
	if err != nil {
		t.Fatalf("stagetest: %v\n%s", err, raw)
	}
	msg, err := sip.ParseMessage([]byte(text))
	if err != nil {
		t.Fatalf("stagetest: the text is not a SIP message: %v\n%s", err, text)
	}
	return msg
}

// normalize turns the text into a message sipgo parses: CRLF line ends,
// a blank line after the headers, and a Content-Length.
func normalize(raw string) (string, error) {
	text := strings.ReplaceAll(raw, "\r\n", "\n")
	text = strings.TrimLeft(text, "\n")
	head, body, hasBody := strings.Cut(text, "\n\n")
	if !hasBody {
		head = strings.TrimRight(head, "\n")
	}
	if strings.TrimSpace(head) == "" {
		return "", fmt.Errorf("the text is empty")
	}
	if strings.Trim(body, "\n") == "" {
		body = "" // blank lines after the headers are not a body
	}
	body = strings.ReplaceAll(body, "\n", "\r\n")
	lines := strings.Split(head, "\n")
	declared := -1
	for i, line := range lines[1:] {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue // a folded line continues the header above
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return "", fmt.Errorf("line %d of the message: %q is not a header (name: value)", i+2, line)
		}
		name = strings.TrimSpace(name)
		if !strings.EqualFold(name, "Content-Length") && !strings.EqualFold(name, "l") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 0 {
			return "", fmt.Errorf("line %d of the message: Content-Length %q is not a number", i+2, strings.TrimSpace(value))
		}
		declared = n
	}
	switch {
	case declared < 0:
		lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)))
	case declared != len(body):
		return "", fmt.Errorf("Content-Length is %d but the body has %d bytes (with CRLF line ends): fix it, or leave Content-Length out and it is filled in", declared, len(body))
	}
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + body, nil
}
