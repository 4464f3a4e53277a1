package pipeline

import (
	"fmt"
	"time"
)

// StageError is an error a stage returned, with the stage's label, so that
// the engine logs it with the stage's name.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// Step is what one stage did with one message, for the trace.
type Step struct {
	Stage string
	// Matched is false when the stage's rule was false (or failed), and the
	// stage was skipped.
	Matched bool
	Verdict Verdict
	// RuleErr is a rule that failed at run time (it counts as no match).
	RuleErr error
}

// matches runs the stage's rule, if any, on the message m, counting
// failures; a stage that does not match is reported to step.
func (e *entry) matches(m EnvSource, step func(Step)) bool {
	if e.rule == nil {
		return true
	}
	ok, err := e.rule.Match(m)
	if err != nil {
		e.ruleFailures.Add(1)
	}
	e.metrics.Rule(ok, err != nil)
	if !ok && step != nil {
		step(Step{Stage: e.label, RuleErr: err})
	}
	return ok
}

// ServeRequest runs the request stages in config order until one replies,
// drops or forwards. If every stage continues, the verdict is Continue and
// the engine answers as the proxy core would. step, if not nil, is called
// for every stage.
func (p *Pipeline) ServeRequest(c *Context, step func(Step)) (Verdict, error) {
	defer c.release()
	for _, e := range p.requests {
		if !e.matches(c, step) {
			continue
		}
		var start time.Time
		if e.metrics != nil {
			start = time.Now()
		}
		v, err := e.req.ServeRequest(c)
		if e.metrics != nil {
			e.metrics.Ran(false, int(v), err != nil, time.Since(start))
		}
		if !e.readOnly {
			c.invalidate()
		}
		if step != nil {
			step(Step{Stage: e.label, Matched: true, Verdict: v})
		}
		if err != nil {
			return v, &StageError{Stage: e.label, Err: err}
		}
		switch v {
		case Continue:
			continue
		case Replied:
			if c.reply == nil {
				return v, &StageError{Stage: e.label, Err: fmt.Errorf("returned Replied without a reply")}
			}
		}
		return v, nil
	}
	return Continue, nil
}

// ServeResponse runs the response stages in config order on a response
// about to go upstream. An error stops the chain; the engine logs it and
// sends the response as it stands.
func (p *Pipeline) ServeResponse(c *ResponseContext, step func(Step)) error {
	defer c.release()
	for _, e := range p.replies {
		if !e.matches(c, step) {
			continue
		}
		var start time.Time
		if e.metrics != nil {
			start = time.Now()
		}
		err := e.res.ServeResponse(c)
		if e.metrics != nil {
			e.metrics.Ran(true, -1, err != nil, time.Since(start))
		}
		if !e.readOnly {
			c.invalidate()
		}
		if step != nil {
			step(Step{Stage: e.label, Matched: true, Verdict: Continue})
		}
		if err != nil {
			return &StageError{Stage: e.label, Err: err}
		}
	}
	return nil
}
