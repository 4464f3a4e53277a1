package parse

import (
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// message builds a request from a request line and header lines; a header
// whose value is "-" is left out.
func message(line string, headers ...string) string {
	base := []string{
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
		"Max-Forwards: 70",
		"From: Alice <sip:alice@example.org>;tag=1928301774",
		"To: Bob <sip:bob@example.org>",
		"Call-ID: a84b4c76e66710@pc33.example.org",
		"CSeq: 314159 INVITE",
		"Contact: <sip:alice@192.0.2.10:5060>",
	}
	set := map[string]string{}
	var extra []string
	for _, h := range headers {
		name, _, _ := strings.Cut(h, ":")
		found := false
		for _, b := range base {
			if strings.HasPrefix(b, name+":") {
				found = true
			}
		}
		if found {
			set[name] = h
		} else {
			extra = append(extra, h)
		}
	}
	out := []string{line}
	for _, b := range base {
		name, _, _ := strings.Cut(b, ":")
		if h, ok := set[name]; ok {
			if strings.TrimSpace(strings.TrimPrefix(h, name+":")) == "-" {
				continue
			}
			b = h
		}
		out = append(out, b)
	}
	out = append(out, extra...)
	out = append(out, "Content-Length: 0", "", "")
	return strings.Join(out, "\n")
}

// serveCase is one request through a parse stage configured with keys.
type serveCase struct {
	keys    string
	raw     string
	verdict pipeline.Verdict
	// code and reason are the reply's, when verdict is Replied.
	code   int
	reason string
}

func runCases(t *testing.T, tests []serveCase) {
	t.Helper()
	for i, tc := range tests {
		h, err := stagetest.BuildStage(t, "parse", tc.keys)
		if err != nil {
			t.Fatalf("test %d: build: %v", i, err)
		}
		// From stagetest.DefaultSource, 192.0.2.10:5060, over UDP.
		r := h.Request(stagetest.Request(t, tc.raw))
		ctx := r.Context
		v, err := r.Verdict, r.Err
		if err != nil {
			t.Errorf("test %d: error %v", i, err)
			continue
		}
		if v != tc.verdict {
			t.Errorf("test %d: verdict %v, want %v", i, v, tc.verdict)
			continue
		}
		res := ctx.Response()
		if tc.verdict != pipeline.Replied {
			if res != nil {
				t.Errorf("test %d: replied %d %s, want no reply", i, res.StatusCode, res.Reason)
			}
			continue
		}
		if res == nil {
			t.Errorf("test %d: no reply", i)
			continue
		}
		if res.StatusCode != tc.code || res.Reason != tc.reason {
			t.Errorf("test %d: replied %d %q, want %d %q", i, res.StatusCode, res.Reason, tc.code, tc.reason)
		}
	}
}

func TestServeRequest(t *testing.T) {
	const invite = "INVITE sip:bob@example.org SIP/2.0"
	tests := []serveCase{
		// 0: a good INVITE passes.
		{raw: message(invite), verdict: pipeline.Continue},
		// 1-5: required headers.
		{raw: message(invite, "Via: -"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing Via"},
		{raw: message(invite, "From: -"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing From"},
		{raw: message(invite, "To: -"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing To"},
		{raw: message(invite, "Call-ID: -"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing Call-ID"},
		{raw: message(invite, "CSeq: -"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing CSeq"},
		// 6: Max-Forwards is optional.
		{raw: message(invite, "Max-Forwards: -"), verdict: pipeline.Continue},
		// 7-9: Contact is required in INVITE, unless require_contact = false, and not in BYE.
		{raw: message(invite, "Contact: -"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: missing Contact in INVITE"},
		{keys: "require_contact = false", raw: message(invite, "Contact: -"), verdict: pipeline.Continue},
		{raw: message("BYE sip:bob@example.org SIP/2.0", "CSeq: 2 BYE", "Contact: -"), verdict: pipeline.Continue},
		// 10-12: CSeq method.
		{raw: message("BYE sip:bob@example.org SIP/2.0"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: CSeq method INVITE does not match request method BYE"},
		{raw: message("CANCEL sip:bob@example.org SIP/2.0"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: CSeq method INVITE does not match request method CANCEL"},
		{raw: message("CANCEL sip:bob@example.org SIP/2.0", "CSeq: 314159 CANCEL"), verdict: pipeline.Continue},
		// 13: a broken ACK is dropped, never answered.
		{raw: message("ACK sip:bob@example.org SIP/2.0"), verdict: pipeline.Dropped},
		// 14-17: Request-URI.
		{raw: message("INVITE tel:+15551234567 SIP/2.0"), verdict: pipeline.Continue},
		{raw: message("INVITE sips:bob@example.org SIP/2.0"), verdict: pipeline.Continue},
		{raw: message("INVITE http://example.org/bob SIP/2.0"), verdict: pipeline.Replied, code: 416, reason: "Unsupported URI Scheme: http"},
		{raw: message("INVITE sip:bob@ SIP/2.0"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: Request-URI has no host"},
		// 18-21: Max-Forwards 0.
		{raw: message(invite, "Max-Forwards: 0"), verdict: pipeline.Replied, code: 483, reason: "Too Many Hops"},
		{raw: message(invite, "Max-Forwards: 1"), verdict: pipeline.Continue},
		{raw: message("OPTIONS sip:example.org SIP/2.0", "CSeq: 1 OPTIONS", "Max-Forwards: 0"), verdict: pipeline.Continue},
		{raw: message("OPTIONS sip:bob@192.0.2.99 SIP/2.0", "CSeq: 1 OPTIONS", "Max-Forwards: 0"), verdict: pipeline.Replied, code: 483, reason: "Too Many Hops"},
		// 22: another SIP version (RFC 4475 3.1.2.16).
		{raw: message("INVITE sip:bob@example.org SIP/7.0"), verdict: pipeline.Replied, code: 505, reason: "Version Not Supported: SIP/7.0"},
		// 23-24: a single-value header twice (RFC 4475 3.3.8).
		{raw: strings.Replace(message(invite), "Call-ID:", "Call-ID: second@pc33.example.org\nCall-ID:", 1), verdict: pipeline.Replied, code: 400, reason: "Bad Request: more than one Call-ID"},
		{raw: strings.Replace(message(invite), "From:", "From: Eve <sip:eve@example.org>;tag=2\nFrom:", 1), verdict: pipeline.Replied, code: 400, reason: "Bad Request: more than one From"},
		// 25: headers in the Request-URI (RFC 4475 3.1.2.11).
		{raw: message("INVITE sip:bob@example.org?Route=%3Csip:example.com%3E SIP/2.0"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: Request-URI carries headers"},
		// 26: Proxy-Require of an extension (RFC 4475 3.3.5).
		{raw: message(invite, "Proxy-Require: totallyunsupported"), verdict: pipeline.Replied, code: 420, reason: "Bad Extension: totallyunsupported"},
		// 27: an RFC 2543 client (no magic cookie) need not send a Contact.
		{raw: message(invite, "Contact: -", "Via: SIP/2.0/UDP 192.0.2.10:5060"), verdict: pipeline.Continue},
		// 28-30: max_headers (the base message has 8 header fields).
		{keys: "max_headers = 10", raw: message(invite, "X-A: 1", "X-B: 2"), verdict: pipeline.Continue},
		{keys: "max_headers = 10", raw: message(invite, "X-A: 1", "X-B: 2", "X-C: 3"), verdict: pipeline.Replied, code: 400, reason: "Bad Request: more than 10 header fields"},
		{keys: "max_headers = 0", raw: message(invite, "X-A: 1", "X-B: 2", "X-C: 3", "X-D: 4"), verdict: pipeline.Continue},
	}
	runCases(t, tests)
}

func TestLoopDetection(t *testing.T) {
	const line = "INVITE sip:bob@example.org SIP/2.0"
	base := stagetest.Request(t, message(line))
	part := pipeline.LoopHash(base)
	if len(part) != 16 || strings.Trim(part, "0123456789abcdef") != "" {
		t.Fatalf("LoopHash = %q, want 16 hex digits", part)
	}
	if again := pipeline.LoopHash(stagetest.Request(t, message(line))); again != part {
		t.Fatalf("LoopHash is not stable: %q then %q", part, again)
	}

	ours := "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsb1;sbloop=" + part
	prev := "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKprev"
	first := "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds"
	vias := func(v ...string) string { return strings.Join(v, "\n") }

	tests := []serveCase{
		// 0: it came back through another hop: loop.
		{raw: message(line, vias(prev, ours, first)), verdict: pipeline.Replied, code: 482, reason: "Loop Detected"},
		// 1: it came straight back from us: loop.
		{raw: message(line, vias(ours, first)), verdict: pipeline.Replied, code: 482, reason: "Loop Detected"},
		// 2: check_loops = false.
		{keys: "check_loops = false", raw: message(line, vias(prev, ours, first)), verdict: pipeline.Continue},
		// 3: a spiral: the Request-URI changed.
		{raw: message("INVITE sip:carol@example.org SIP/2.0", vias(prev, ours, first)), verdict: pipeline.Continue},
		// 4: a spiral: another Route on top.
		{raw: message(line, vias(prev, ours, first), "Route: <sip:192.0.2.30;lr>"), verdict: pipeline.Continue},
		// 5: the same hash on a Via that is not ours.
		{raw: message(line, vias(prev, strings.Replace(ours, "127.0.0.1", "192.0.2.40", 1), first)), verdict: pipeline.Continue},
		// 6: our Via with another hash.
		{raw: message(line, vias(prev, strings.Replace(ours, part, "0000000000000000", 1), first)), verdict: pipeline.Continue},
		// 7: the CSeq number changed: a new request.
		{raw: message(line, vias(prev, ours, first), "CSeq: 314160 INVITE"), verdict: pipeline.Continue},
		// 8: the Via parameter is all that counts, not the branch.
		{raw: message(line, vias(prev, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsb1", first)), verdict: pipeline.Continue},
	}
	runCases(t, tests)
}

func TestLoopHashInputs(t *testing.T) {
	const line = "INVITE sip:bob@example.org SIP/2.0"
	part := pipeline.LoopHash(stagetest.Request(t, message(line)))
	tests := []struct {
		raw  string
		same bool
	}{
		{raw: message("INVITE sip:bob@example.org;transport=udp SIP/2.0"), same: true},
		{raw: message(line, "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKother"), same: true},
		{raw: message(line, "Max-Forwards: 12"), same: true},
		{raw: message("INVITE sip:bob@example.org:5070 SIP/2.0")},
		{raw: message(line, "Call-ID: other@pc33.example.org")},
		{raw: message(line, "From: Alice <sip:alice@example.org>;tag=other")},
		{raw: message(line, "To: Bob <sip:bob@example.org>;tag=other")},
		{raw: message(line, "Route: <sip:192.0.2.30;lr>")},
	}
	for i, tc := range tests {
		got := pipeline.LoopHash(stagetest.Request(t, tc.raw))
		if (got == part) != tc.same {
			t.Errorf("test %d: LoopBranchPart %q vs %q, want same=%v", i, got, part, tc.same)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		keys string
		err  string
	}{
		{keys: "check_loops = false\nrequire_contact = false"},
		{keys: "max_message_size = 10", err: "test.toml:7:1: stage 1 (parse): max_message_size: unknown key (known: check_loops, require_contact, max_headers)"},
		{keys: "max_headers = 0"},
		{keys: "max_headers = -1", err: "test.toml:7:1: stage 1 (parse): max_headers: -1 is negative (0 is no limit)"},
		{keys: "check_loops = \"yes\"", err: "stage 1 (parse): "},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "parse", tc.keys)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("test %d: error %v, want %q", i, err, tc.err)
		}
	}
}
