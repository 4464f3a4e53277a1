package pipeline

import (
	"fmt"

	"github.com/switchboard-sip/switchboard/config"
)

// buildCapture compiles [capture] when.
func (p *Pipeline) buildCapture(c config.Capture, errs *config.Errors) {
	if c.When == "" {
		return
	}
	r, err := CompileRule(c.When)
	if err != nil {
		errs.Add(fmt.Errorf("capture: when: %w", err))
	}
	p.captureRule = r
}

// Captured reports whether a message goes to the HEP collector under
// [capture] when; env is called only when there is a rule, and a message
// that does not parse (nil) matches only when there is none.
func (p *Pipeline) Captured(env func() *Env) bool {
	if p.captureRule == nil {
		return true
	}
	e := env()
	if e == nil {
		return false
	}
	ok, _ := p.captureRule.Match(e)
	return ok
}
