package dialplan

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// Rule is one [[stage.rule]]: where it applies (when, match) and what it
// does to its part of the request (replace, then strip, then prefix).
type Rule struct {
	// When is an expr rule, as a stage's `when`: the rule applies only
	// where it is true.
	When string `toml:"when"`
	// Part is what the rule reads and rewrites: "user" (the default),
	// "host", "port" or "params" of the Request-URI.
	Part string `toml:"part"`
	// Header, instead of Part, rewrites every value of this header.
	Header string `toml:"header"`
	// Match is a regular expression (Go syntax) the part must match for
	// the rule to apply; empty matches anything.
	Match string `toml:"match"`
	// Replace replaces the matches of Match, with $1 or ${name} for its
	// groups.
	Replace *string `toml:"replace"`
	// Strip removes this many leading characters.
	Strip int `toml:"strip"`
	// Prefix is put in front.
	Prefix string `toml:"prefix"`
	// Continue goes on to the next rule after this one applied.
	Continue bool `toml:"continue"`
}

// The values of part.
const (
	partUser   = "user"
	partHost   = "host"
	partPort   = "port"
	partParams = "params"
)

// refused are the headers a rule may not rewrite, by lower-case full and
// compact name: those the proxy manages (a transaction and a dialog are
// identified by them, the body is framed by Content-Length, loop
// protection counts on Max-Forwards) and those sipgo parses into its own
// types, which a rewritten text would not update.
var refused = map[string]string{
	"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To",
	"call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq", "content-length": "Content-Length",
	"l": "Content-Length", "max-forwards": "Max-Forwards", "contact": "Contact", "m": "Contact",
	"route": "Route", "record-route": "Record-Route", "content-type": "Content-Type", "c": "Content-Type",
	"refer-to": "Refer-To", "r": "Refer-To", "referred-by": "Referred-By", "b": "Referred-By",
}

func (r *Rule) validate() error {
	switch r.Part {
	case "", partUser, partHost, partPort, partParams:
	default:
		return fmt.Errorf("part: %q is not one of %q, %q, %q, %q", r.Part, partUser, partHost, partPort, partParams)
	}
	if r.Header != "" {
		if r.Part != "" {
			return fmt.Errorf("header: give part or header, not both")
		}
		if name, ok := refused[strings.ToLower(r.Header)]; ok {
			return fmt.Errorf("header: %q is managed by the proxy or parsed by sipgo (%s), and cannot be rewritten", r.Header, name)
		}
		if strings.ContainsAny(r.Header, " \t:\r\n") || r.Header == "" {
			return fmt.Errorf("header: %q is not a header name", r.Header)
		}
	}
	if r.Match != "" {
		if _, err := regexp.Compile(r.Match); err != nil {
			return fmt.Errorf("match: %w", err)
		}
	}
	if r.Replace != nil && r.Match == "" {
		return errors.New("replace: needs match, the expression whose matches it replaces")
	}
	if r.Strip < 0 {
		return fmt.Errorf("strip: %d is negative", r.Strip)
	}
	if r.Replace == nil && r.Strip == 0 && r.Prefix == "" && r.Match == "" {
		return errors.New("nothing to do: give match, replace, strip or prefix")
	}
	return nil
}

// rule is a Rule ready to run.
type rule struct {
	Rule
	when  *pipeline.Rule
	match *regexp.Regexp
	part  part
}

func (r *Rule) compile() (*rule, error) {
	c := &rule{Rule: *r, part: partOf(r)}
	if r.When != "" {
		w, err := pipeline.CompileRule(r.When)
		if err != nil {
			return nil, fmt.Errorf("when: %w", err)
		}
		c.when = w
	}
	if r.Match != "" {
		c.match = regexp.MustCompile(r.Match) // validate compiled it
	}
	return c, nil
}

// apply runs the rule on the request of ctx, and reports whether it
// applied and ends the stage.
func (r *rule) apply(ctx *pipeline.Context) (bool, error) {
	if r.when != nil {
		if ok, err := r.when.Match(ctx); err != nil || !ok {
			return false, err
		}
	}
	values, ok := r.part.get(ctx.Request)
	if !ok {
		return false, nil
	}
	applied := false
	for i, v := range values {
		if r.match != nil && !r.match.MatchString(v) {
			continue
		}
		applied = true
		values[i] = r.rewrite(v)
	}
	if !applied {
		return false, nil
	}
	if err := r.part.set(ctx.Request, values); err != nil {
		return false, err
	}
	ctx.Changed()
	return !r.Continue, nil
}

// rewrite replaces, strips and prefixes v.
func (r *rule) rewrite(v string) string {
	if r.Replace != nil {
		v = r.match.ReplaceAllString(v, *r.Replace)
	}
	v = v[min(r.Strip, len(v)):]
	return r.Prefix + v
}
