package engine

import (
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// BenchmarkParseParams measures the parse of a request with n parameters
// in one Via, To, From or Request-URI, on the socket's reader. "sipgo" is
// sipgo's own parser, "engine" the engine's, which refuses a To or From
// with more than sip.ParseMaxHeaderParams as sipgo does a Via or URI.
func BenchmarkParseParams(b *testing.B) {
	parsers := []struct {
		name   string
		parser *sip.Parser
	}{{"sipgo", sip.NewParser()}, {"engine", newParser()}}
	for _, where := range []string{"Via", "To", "From", "Request-URI"} {
		for _, n := range []int{100, 1000, 2000, 4000, 8000} {
			ps := manyParams(n)
			var msg []byte
			switch where {
			case "Via":
				msg = paramsRequest("", ps, "", "", "")
			case "To":
				msg = paramsRequest("", "", ps, "", "")
			case "From":
				msg = paramsRequest("", "", "", ps, "")
			case "Request-URI":
				msg = paramsRequest(ps, "", "", "", "")
			}
			for _, p := range parsers {
				b.Run(where+"/"+strconv.Itoa(n)+"/"+p.name, func(b *testing.B) {
					for b.Loop() {
						_, _ = p.parser.ParseSIP(msg)
					}
				})
			}
		}
	}
}

// BenchmarkParseDearest measures the parse of the dearest datagrams that
// still parse, near the largest size: lists of Routes and Contacts, and
// thousands of short header fields. Their cost is linear in the size too,
// but they are what one source can still make the socket's reader spend.
func BenchmarkParseDearest(b *testing.B) {
	tests := []struct {
		name  string
		extra string
	}{
		{"4000 Routes (52 KB)", "Route: " + strings.Repeat("<sip:a@h;lr>,", 3999) + "<sip:a@h;lr>\r\n"},
		{"4000 Contacts (40 KB)", "Contact: " + strings.Repeat("<sip:a@h>,", 3999) + "<sip:a@h>\r\n"},
		{"8000 header fields (64 KB)", strings.Repeat("X-A: b\r\n", 8000)},
	}
	p := newParser()
	for _, tc := range tests {
		msg := paramsRequest("", "", "", "", tc.extra)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ParseSIP(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
