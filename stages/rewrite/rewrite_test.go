package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// build returns a harness of one rewrite stage with the given keys.
func build(t *testing.T, keys string) (*stagetest.Harness, error) {
	t.Helper()
	return stagetest.BuildStage(t, "rewrite", keys)
}

const inviteText = `
INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: "Alice" <sip:alice@example.org>;tag=1928301774
To: "Bob" <sip:bob@example.org>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060>
User-Agent: Phone/1.0
Content-Type: text/plain
Content-Length: 5

hello`

// responseText is the answer to inviteText, with the given status line.
func responseText(status string) string {
	return `
SIP/2.0 ` + status + `
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
From: "Alice" <sip:alice@example.org>;tag=1928301774
To: "Bob" <sip:bob@example.org>;tag=a6c85cf
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>
User-Agent: Phone/1.0
user-agent: Other/2.0
X-Foo: old
Content-Type: text/plain
Content-Length: 5

hello`
}

// headerLines returns the header lines of m as sipgo writes them.
func headerLines(m sip.Message) []string {
	head, _, _ := strings.Cut(m.String(), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	return lines[1:]
}

// responseLines are the header lines of responseText after the common
// ones (Via, From, To, Call-ID, CSeq).
var responseLines = []string{
	"Contact: <sip:bob@192.0.2.4>",
	"User-Agent: Phone/1.0",
	"user-agent: Other/2.0",
	"X-Foo: old",
	"Content-Type: text/plain",
	"Content-Length: 5",
}

// commonResponse are the first header lines of responseText, which no
// rewrite may change.
var commonResponse = []string{
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
	`From: "Alice" <sip:alice@example.org>;tag=1928301774`,
	`To: "Bob" <sip:bob@example.org>;tag=a6c85cf`,
	"Call-ID: a84b4c76e66710@pc33.example.org",
	"CSeq: 314159 INVITE",
}

func TestServeResponse(t *testing.T) {
	tests := []struct {
		keys   string
		status string
		reason string
		lines  []string // after commonResponse
	}{
		// 0-1: the seed rule.
		{keys: "when = 'response.code == 200'\nreason = \"OK THANKS\"", status: "200 Ok", reason: "OK THANKS", lines: responseLines},
		{keys: "when = 'response.code == 200'\nreason = \"OK THANKS\"", status: "180 Ringing", reason: "Ringing", lines: responseLines},
		// 2: set_header replaces every header of the name, whatever its case, in place of the first.
		{keys: `set_header = { "user-AGENT" = "Switchboard" }`, status: "200 OK", reason: "OK", lines: []string{
			"Contact: <sip:bob@192.0.2.4>", "user-AGENT: Switchboard", "X-Foo: old", "Content-Type: text/plain", "Content-Length: 5"}},
		// 3: set_header appends a header that is not there.
		{keys: `set_header = { "X-New" = "a, b" }`, status: "200 OK", reason: "OK", lines: append(append([]string{}, responseLines...), "X-New: a, b")},
		// 4: add_header appends another.
		{keys: `add_header = { "x-foo" = "new" }`, status: "200 OK", reason: "OK", lines: append(append([]string{}, responseLines...), "x-foo: new")},
		// 5: remove_header removes every one of the name.
		{keys: `remove_header = ["USER-AGENT", "X-Missing"]`, status: "200 OK", reason: "OK", lines: []string{
			"Contact: <sip:bob@192.0.2.4>", "X-Foo: old", "Content-Type: text/plain", "Content-Length: 5"}},
		// 6: a compact name names the full header.
		{keys: `remove_header = ["m"]`, status: "200 OK", reason: "OK", lines: responseLines[1:]},
		// 7: value_expr, against the request's From and the response's headers.
		{keys: `value_expr = { "X-Caller" = 'from.user + "@" + from.host + " " + header("x-foo")' }`, status: "200 OK", reason: "OK",
			lines: append(append([]string{}, responseLines...), "X-Caller: alice@example.org old")},
		// 8: everything at once, in order: remove, set, value_expr, add.
		{keys: `
reason = "Fine"
remove_header = ["X-Foo"]
set_header = { "User-Agent" = "Switchboard", "Contact" = "<sip:proxy@192.0.2.1>" }
value_expr = { "X-Code" = 'string(response.code)' }
add_header = { "X-Foo" = "added" }`, status: "200 OK", reason: "Fine", lines: []string{
			"Contact: <sip:proxy@192.0.2.1>", "User-Agent: Switchboard", "Content-Type: text/plain", "Content-Length: 5", "X-Code: 200", "X-Foo: added"}},
		// 9: apply_to = "requests" leaves responses alone.
		{keys: "apply_to = \"requests\"\nset_header = { \"X-Foo\" = \"new\" }", status: "200 OK", reason: "OK", lines: responseLines},
		// 10: apply_to = "responses".
		{keys: "apply_to = \"responses\"\nset_header = { \"X-Foo\" = \"new\" }", status: "200 OK", reason: "OK", lines: []string{
			"Contact: <sip:bob@192.0.2.4>", "User-Agent: Phone/1.0", "user-agent: Other/2.0", "X-Foo: new", "Content-Type: text/plain", "Content-Length: 5"}},
	}
	for i, tc := range tests {
		h, err := build(t, tc.keys)
		if err != nil {
			t.Fatalf("test %d: build: %v", i, err)
		}
		r := h.Response(stagetest.Request(t, inviteText), stagetest.Response(t, responseText(tc.status)))
		if r.Err != nil {
			t.Errorf("test %d: %v", i, r.Err)
			continue
		}
		res := r.Response
		if res.Reason != tc.reason {
			t.Errorf("test %d: reason %q, want %q", i, res.Reason, tc.reason)
		}
		want := append(append([]string{}, commonResponse...), tc.lines...)
		if got := headerLines(res); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("test %d: headers\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if string(res.Body()) != "hello" || res.ContentLength() == nil || *res.ContentLength() != 5 {
			t.Errorf("test %d: body %q, Content-Length %v: want them unchanged", i, res.Body(), res.ContentLength())
		}
		if !strings.HasSuffix(res.String(), "\r\n\r\nhello") {
			t.Errorf("test %d: the message does not end with its body:\n%s", i, res.String())
		}
	}
}

// requestLines are the header lines of inviteText.
var requestLines = []string{
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
	"Max-Forwards: 70",
	`From: "Alice" <sip:alice@example.org>;tag=1928301774`,
	`To: "Bob" <sip:bob@example.org>`,
	"Call-ID: a84b4c76e66710@pc33.example.org",
	"CSeq: 314159 INVITE",
	"Contact: <sip:alice@192.0.2.10:5060>",
	"User-Agent: Phone/1.0",
	"Content-Type: text/plain",
	"Content-Length: 5",
}

func TestServeRequest(t *testing.T) {
	replaced := append([]string{}, requestLines...)
	replaced[7] = "User-Agent: Switchboard"
	tests := []struct {
		keys  string
		lines []string
	}{
		// 0: a reason is for responses only; with apply_to = "both" the request is left alone.
		{keys: `reason = "OK THANKS"`, lines: requestLines},
		// 1: the seed rule does not match a request.
		{keys: "when = 'response.code == 200'\nset_header = { \"User-Agent\" = \"Switchboard\" }", lines: requestLines},
		// 2-3: apply_to "both" (the default) and "requests".
		{keys: `set_header = { "User-Agent" = "Switchboard" }`, lines: replaced},
		{keys: "apply_to = \"requests\"\nset_header = { \"User-Agent\" = \"Switchboard\" }", lines: replaced},
		// 4: apply_to = "responses".
		{keys: "apply_to = \"responses\"\nset_header = { \"User-Agent\" = \"Switchboard\" }", lines: requestLines},
		// 5: add, remove and value_expr.
		{keys: `
remove_header = ["user-agent", "Contact"]
add_header = { "Route" = "<sip:192.0.2.30;lr>" }
value_expr = { "X-Caller" = 'from.display + " <" + from.user + "@" + from.host + ">"' }`,
			lines: append(append(append([]string{}, requestLines[:6]...), requestLines[8:]...), "X-Caller: Alice <alice@example.org>", "Route: <sip:192.0.2.30;lr>")},
	}
	for i, tc := range tests {
		h, err := build(t, tc.keys)
		if err != nil {
			t.Fatalf("test %d: build: %v", i, err)
		}
		r := h.Request(stagetest.Request(t, inviteText))
		if r.Err != nil || r.Verdict != pipeline.Continue {
			t.Errorf("test %d: %s; want continue", i, r)
			continue
		}
		req := r.Request
		if got := headerLines(req); strings.Join(got, "\n") != strings.Join(tc.lines, "\n") {
			t.Errorf("test %d: headers\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
		}
		if string(req.Body()) != "hello" || req.ContentLength() == nil || *req.ContentLength() != 5 {
			t.Errorf("test %d: body %q, Content-Length %v: want them unchanged", i, req.Body(), req.ContentLength())
		}
	}
}

// TestTypedHeaders checks that a header sipgo knows is typed after a
// rewrite, so that sipgo's accessors see the new value.
func TestTypedHeaders(t *testing.T) {
	h := stagetest.Stage(t, "rewrite", `
set_header = { "Contact" = "<sip:proxy@192.0.2.1:5080>" }
add_header = { "Route" = "<sip:192.0.2.30;lr>, <sip:192.0.2.31;lr>" }`)
	for i := 0; i < 2; i++ { // the second run checks that the values are not shared
		r := h.Request(stagetest.Request(t, inviteText))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		req := r.Request
		if c := req.Contact(); c == nil || c.Address.Host != "192.0.2.1" || c.Address.Port != 5080 {
			t.Errorf("run %d: Contact() = %v, want sip:proxy@192.0.2.1:5080", i, c)
		}
		if r := req.Route(); r == nil || r.Address.Host != "192.0.2.30" {
			t.Errorf("run %d: Route() = %v, want sip:192.0.2.30;lr", i, r)
		}
		if n := len(req.GetHeaders("Route")); n != 2 {
			t.Errorf("run %d: %d Route headers, want 2", i, n)
		}
		if v := req.Via(); v == nil || v.Host != "192.0.2.10" {
			t.Errorf("run %d: Via() = %v, want the received one", i, v)
		}
		if cs := req.CSeq(); cs == nil || cs.SeqNo != 314159 {
			t.Errorf("run %d: CSeq() = %v", i, cs)
		}
	}
}

func TestValueExprErrors(t *testing.T) {
	tests := []struct {
		expr string
		err  string
	}{
		{expr: `split(call_id, "@")[5]`, err: `stage 1 (rewrite): value_expr: "X-Part": `},
		{expr: `from.user + "\r\nX-Evil: 1"`, err: `stage 1 (rewrite): value_expr: "X-Part": the value contains a carriage return (CR), which would end the line`},
	}
	for i, tc := range tests {
		h, err := build(t, "value_expr = { \"X-Part\" = '"+tc.expr+"' }\nset_header = { \"X-Foo\" = \"new\" }")
		if err != nil {
			t.Fatalf("test %d: build: %v", i, err)
		}
		r := h.Request(stagetest.Request(t, inviteText))
		var se *pipeline.StageError
		if err := r.Err; err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("test %d: request: error %v, want a StageError with %q", i, err, tc.err)
		}
		if got := headerLines(r.Request); strings.Join(got, "\n") != strings.Join(requestLines, "\n") {
			t.Errorf("test %d: the failed rewrite changed the request:\n%s", i, strings.Join(got, "\n"))
		}
		rr := h.Response(r.Request, stagetest.Response(t, responseText("200 OK")))
		if err := rr.Err; err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("test %d: response: error %v, want %q", i, err, tc.err)
		}
		if got := headerLines(rr.Response)[len(commonResponse):]; strings.Join(got, "\n") != strings.Join(responseLines, "\n") {
			t.Errorf("test %d: the failed rewrite changed the response:\n%s", i, strings.Join(got, "\n"))
		}
	}
}

func TestConfigErrors(t *testing.T) {
	const managed = "is managed by the proxy and cannot be rewritten"
	tests := []struct {
		keys string
		err  string
	}{
		// Headers the proxy manages, by full and compact name, in every key.
		{`set_header = { "Via" = "x" }`, `set_header: "Via" ` + managed},
		{`set_header = { "v" = "x" }`, `set_header: "v" (Via) ` + managed},
		{`add_header = { "via" = "x" }`, `add_header: "via" ` + managed},
		{`remove_header = ["CSeq"]`, `remove_header[0]: "CSeq" ` + managed},
		{`remove_header = ["X-Ok", "Call-ID"]`, `remove_header[1]: "Call-ID" ` + managed},
		{`remove_header = ["i"]`, `remove_header[0]: "i" (Call-ID) ` + managed},
		{`set_header = { "Content-Length" = "0" }`, `set_header: "Content-Length" ` + managed},
		{`set_header = { "l" = "0" }`, `set_header: "l" (Content-Length) ` + managed},
		{`add_header = { "From" = "<sip:x@y>" }`, `add_header: "From" ` + managed},
		{`add_header = { "f" = "<sip:x@y>" }`, `add_header: "f" (From) ` + managed},
		{`remove_header = ["To"]`, `remove_header[0]: "To" ` + managed},
		{`remove_header = ["T"]`, `remove_header[0]: "T" (To) ` + managed},
		{`remove_header = ["max-forwards"]`, `remove_header[0]: "max-forwards" ` + managed},
		{`value_expr = { "To" = '"x"' }`, `value_expr: "To" ` + managed},
		// Names that are not tokens.
		{`set_header = { "X Foo" = "x" }`, `set_header: "X Foo" is not a header name: " " is not allowed in one`},
		{`add_header = { "X-Foo:" = "x" }`, `add_header: "X-Foo:" is not a header name: ":" is not allowed in one`},
		{`remove_header = [""]`, `remove_header[0]: "" is not a header name`},
		{`value_expr = { "X-Ä" = '"x"' }`, `value_expr: "X-Ä" is not a header name`},
		// Values.
		{`set_header = { "X-Foo" = "a\r\nX-Evil: 1" }`, `set_header: "X-Foo": the value contains a carriage return (CR), which would end the line`},
		{`add_header = { "X-Foo" = "a\nb" }`, `add_header: "X-Foo": the value contains a line feed (LF), which would end the line`},
		{`add_header = { "X-Foo" = "a\u0000b" }`, `add_header: "X-Foo": the value contains a NUL byte`},
		{`add_header = { "X-Foo" = "a\u0007b" }`, `add_header: "X-Foo": the value contains the control character 0x07`},
		{`set_header = { "Contact" = "<sip:a@b" }`, `set_header: "Contact": the value "<sip:a@b" is not a valid Contact header`},
		// reason.
		{`reason = "OK\r\nX-Evil: 1"`, `reason: contains a carriage return (CR)`},
		{`reason = "OK\n"`, `reason: contains a line feed (LF)`},
		{`reason = "O\u0000K"`, `reason: contains a NUL byte`},
		{"apply_to = \"requests\"\nreason = \"OK THANKS\"", `reason: only responses have a reason phrase, but apply_to = "requests"`},
		// apply_to.
		{"apply_to = \"all\"\nreason = \"x\"", `apply_to: "all" is not one of "requests", "responses", "both"`},
		// value_expr.
		{`value_expr = { "X-A" = 'nope.user' }`, `value_expr: "X-A": unknown name nope`},
		{`value_expr = { "X-A" = 'cseq.seq' }`, `value_expr: "X-A": expected string, but got int`},
		// A header set twice.
		{`set_header = { "X-Foo" = "a", "x-foo" = "b" }`, `set_header: "x-foo" is already set by set_header "X-Foo": set a header once`},
		{"set_header = { \"X-Foo\" = \"a\" }\nvalue_expr = { \"X-FOO\" = '\"b\"' }", `value_expr: "X-FOO" is already set by set_header "X-Foo": set a header once`},
		// Nothing to do, and unknown keys.
		{``, `nothing to do: give at least one of reason, set_header, add_header, remove_header, value_expr`},
		{`header = { "X-Foo" = "a" }`, `header: unknown key (known: reason, set_header, add_header, remove_header, value_expr, apply_to)`},
	}
	for i, tc := range tests {
		_, err := build(t, tc.keys)
		want := "stage 1 (rewrite): " + tc.err
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("test %d: %s\nerror %v\nwant  %s", i, tc.keys, err, want)
		}
	}
}

func TestConfigGood(t *testing.T) {
	tests := []string{
		`reason = "OK THANKS"`,
		`reason = "Très bien"`,
		"apply_to = \"both\"\nreason = \"OK\"",
		`set_header = { "X-Foo" = "" }`,
		`set_header = { "Subject" = "tab	ok" }`,
		`add_header = { "X-Foo" = "a", "x-foo" = "b" }`,
		`remove_header = ["User-Agent", "k", "Record-Route"]`,
		"remove_header = [\"X-Foo\"]\nadd_header = { \"X-Foo\" = \"b\" }",
	}
	for i, keys := range tests {
		if _, err := build(t, keys); err != nil {
			t.Errorf("test %d: %s: %v", i, keys, err)
		}
	}
}

// TestCompactNames checks that a header received under its compact name is
// matched by its full name, and the other way round.
func TestCompactNames(t *testing.T) {
	raw := strings.Replace(inviteText, "User-Agent: Phone/1.0\n", "k: 100rel\nSupported: timer\nm: <sip:alice@192.0.2.11>\n", 1)
	raw = strings.Replace(raw, "Contact: <sip:alice@192.0.2.10:5060>\n", "", 1)
	h := stagetest.Stage(t, "rewrite", `
remove_header = ["Supported"]
set_header = { "m" = "<sip:proxy@192.0.2.1>" }`)
	r := h.Request(stagetest.Request(t, raw))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	req := r.Request
	want := append(append(append([]string{}, requestLines[:6]...), "Contact: <sip:proxy@192.0.2.1>"), requestLines[8:]...)
	if got := headerLines(req); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("headers\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestConcurrent runs one pipeline on many messages at once, for the race
// detector: the parsed values of set_header and add_header are shared.
func TestConcurrent(t *testing.T) {
	h := stagetest.Stage(t, "rewrite", `
reason = "Fine"
set_header = { "Contact" = "<sip:proxy@192.0.2.1>", "X-Foo" = "new" }
add_header = { "X-Bar" = "bar" }
value_expr = { "X-Caller" = 'from.user' }`)
	req := stagetest.Request(t, inviteText)
	res := stagetest.Response(t, responseText("200 OK"))
	done := make(chan error)
	for range 8 {
		go func() {
			var err error
			for range 20 {
				r := h.Response(req, res)
				err = r.Err
				if c := r.Response.Contact(); err == nil && (c == nil || c.Address.Host != "192.0.2.1") {
					err = errors.New("Contact not set")
				}
				if err != nil {
					break
				}
				_ = r.Response.String()
			}
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestChainSeesChanges runs two rewrite stages: the second one's rule and
// value_expr read the headers the first one set, on requests and on
// responses.
func TestChainSeesChanges(t *testing.T) {
	h := stagetest.Chain(t, `
[[stage]]
use        = "rewrite"
when       = 'header("X-Step") == ""'
set_header = { "X-Step" = "1" }

[[stage]]
use        = "rewrite"
when       = 'header("X-Step") == "1"'
value_expr = { "X-Seen" = '"step " + header("X-Step") + " for " + from.user' }
`)
	r := h.Request(stagetest.Request(t, inviteText))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	req := r.Request
	rr := h.Response(r.Received, stagetest.Response(t, responseText("200 OK")))
	if rr.Err != nil {
		t.Fatal(rr.Err)
	}
	res := rr.Response
	for i, m := range []interface {
		sip.Message
		GetHeader(string) sip.Header
	}{req, res} {
		if h := m.GetHeader("X-Seen"); h == nil || h.Value() != "step 1 for alice" {
			t.Errorf("test %d: X-Seen %v, want \"step 1 for alice\"\n%s", i, h, m)
		}
	}
}
