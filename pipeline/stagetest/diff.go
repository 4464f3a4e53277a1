package stagetest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Diff is what changed between two messages, one line per change:
//
//	-INVITE sip:100@example.org SIP/2.0    the start line before...
//	+INVITE sip:alice@example.org SIP/2.0  ...and after
//	-User-Agent: Phone/1.0                 a header line that went away
//	+X-Caller: alice@example.org           a header line that came
//	~body: 5 -> 0 bytes                    the body changed
//
// A header whose value changed is a - line and a + line. Header lines are
// written as "Name: value", with the name as the message spells it, and
// compared as written; a header that only moved is not a change. The start
// line comes first, then the lines that went away in their old order, then
// those that came in their new order, then the body.
type Diff []string

// String returns the lines of the diff, one per line; "" when nothing
// changed.
func (d Diff) String() string { return strings.Join(d, "\n") }

// Empty reports whether nothing changed.
func (d Diff) Empty() bool { return len(d) == 0 }

// message is what a request and a response have for a diff.
type message interface {
	sip.Message
	StartLine() string
	Headers() []sip.Header
}

// Changed returns what changed from before to after: two requests or two
// responses (a *sip.Request or a *sip.Response each). Either may be nil, an
// empty message.
func Changed(before, after sip.Message) Diff {
	var d Diff
	bStart, bLines, bBody := parts(before)
	aStart, aLines, aBody := parts(after)
	if bStart != aStart {
		if bStart != "" {
			d = append(d, "-"+bStart)
		}
		if aStart != "" {
			d = append(d, "+"+aStart)
		}
	}
	left := count(aLines)
	for _, l := range bLines {
		if left[l] > 0 {
			left[l]--
			continue
		}
		d = append(d, "-"+l)
	}
	left = count(bLines)
	for _, l := range aLines {
		if left[l] > 0 {
			left[l]--
			continue
		}
		d = append(d, "+"+l)
	}
	if !bytes.Equal(bBody, aBody) {
		d = append(d, fmt.Sprintf("~body: %d -> %d bytes", len(bBody), len(aBody)))
	}
	return d
}

// parts returns the start line, header lines and body of m.
func parts(m sip.Message) (string, []string, []byte) {
	msg, ok := m.(message)
	if !ok || isNil(m) {
		return "", nil, nil
	}
	hs := msg.Headers()
	lines := make([]string, len(hs))
	for i, h := range hs {
		lines[i] = h.Name() + ": " + h.Value()
	}
	return msg.StartLine(), lines, msg.Body()
}

// isNil reports whether m is a typed nil pointer.
func isNil(m sip.Message) bool {
	switch m := m.(type) {
	case *sip.Request:
		return m == nil
	case *sip.Response:
		return m == nil
	}
	return m == nil
}

func count(lines []string) map[string]int {
	n := make(map[string]int, len(lines))
	for _, l := range lines {
		n[l]++
	}
	return n
}
