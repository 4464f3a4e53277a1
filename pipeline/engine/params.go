package engine

import (
	"maps"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// sipgo stops parsing a Via, and a URI's parameters and headers, past
// sip.ParseMaxHeaderParams parameters (v1.7.4), but not the header
// parameters of a To, From, Contact or Referred-By: it adds them one by one
// to a list that it first searches for the name, so a value with n
// parameters costs n² comparisons, on the goroutine that reads the socket.
// headerParsers counts the semicolons of such a value first and refuses it
// past the same limit, with sipgo's own error, so that the parsing of every
// message stays linear in its size.

// headerParsers are sipgo's header parsers, with the parameter limit on
// the name-addr headers. Every parser of the engine uses them.
var headerParsers = limitParams(sip.DefaultHeadersParser())

// newParser returns a sipgo parser with headerParsers.
func newParser() *sip.Parser {
	return sip.NewParser(sip.WithHeadersParsers(headerParsers))
}

// limitParams returns parsers with the name-addr headers' parsers wrapped
// in the parameter limit.
func limitParams(parsers sip.HeadersParser) sip.HeadersParser {
	out := maps.Clone(parsers)
	for name, list := range map[string]bool{"to": false, "t": false, "from": false, "f": false, "referred-by": false, "contact": true, "m": true} {
		if parse, ok := parsers[name]; ok {
			out[name] = limited(parse, list)
		}
	}
	return out
}

// limited wraps parse: a value with more semicolons than
// sip.ParseMaxHeaderParams is refused with sip.ErrTooManyHeaderParams. For
// a list (Contact), only the value sipgo parses in this call counts: up to
// the first comma outside quotes and <>, as sipgo finds it.
func limited(parse sip.HeaderParser, list bool) sip.HeaderParser {
	return func(name []byte, text string) (sip.Header, error) {
		// strings.Count is an upper bound on semicolons' count, and far
		// cheaper: the scan runs only for a value that might pass it.
		if limit := sip.ParseMaxHeaderParams; limit > 0 && strings.Count(text, ";") > limit && semicolons(text, list, limit) > limit {
			return nil, sip.ErrTooManyHeaderParams
		}
		return parse(name, text)
	}
}

// semicolons counts the semicolons of text, quoted or not (sipgo splits
// header parameters at every one), stopping past limit and, for a list, at
// the comma where sipgo's Contact parser ends the value.
func semicolons(text string, list bool, limit int) int {
	n := 0
	inQuotes, inBrackets := false, false
	for i := 0; i < len(text) && n <= limit; i++ {
		switch c := text[i]; {
		case c == ';':
			n++
		case c == '<' && !inQuotes:
			inBrackets = true
		case c == '>' && !inQuotes:
			inBrackets = false
		case c == '"':
			inQuotes = !inQuotes
		case c == ',' && list && !inQuotes && !inBrackets:
			return n
		}
	}
	return n
}
