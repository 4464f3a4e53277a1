// Package dialplan is the dialplan stage: ordered rules that rewrite the
// Request-URI (user, host, port, parameters) and chosen headers of a
// request, by regular expression and by stripping and adding prefixes, as
// in turning the national 0903123456 into +421903123456.
package dialplan

import (
	"errors"
	"fmt"

	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "dialplan",
		Description: "rewrites the Request-URI and chosen headers of requests by ordered rules: regex replace, strip and add prefixes",
		New:         func() pipeline.Stage { return new(Dialplan) },
	})
}

// Dialplan runs its rules in order on each request: the first that
// matches rewrites its part of the request, and ends the stage unless it
// says continue.
type Dialplan struct {
	// Rules are the [[stage.rule]] tables.
	Rules []Rule `toml:"rule"`

	rules []*rule
}

var (
	_ pipeline.RequestStage = (*Dialplan)(nil)
	_ pipeline.Provisioner  = (*Dialplan)(nil)
	_ pipeline.Validator    = (*Dialplan)(nil)
)

// Validate checks every rule: its part, its regular expression, and that
// it has something to do.
func (d *Dialplan) Validate() error {
	if len(d.Rules) == 0 {
		return errors.New("rule: none: give at least one [[stage.rule]]")
	}
	var errs []error
	for i, r := range d.Rules {
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Provision compiles the rules.
func (d *Dialplan) Provision(*pipeline.BuildContext) error {
	var errs []error
	d.rules = make([]*rule, len(d.Rules))
	for i, r := range d.Rules {
		c, err := r.compile()
		if err != nil {
			errs = append(errs, fmt.Errorf("rule[%d]: %w", i, err))
		}
		d.rules[i] = c
	}
	return errors.Join(errs...)
}

// ServeRequest runs the rules and always continues. A rewrite that would
// make the request invalid (a port that is not a number, a host left
// empty) is returned as an error, and the request stays as it was before
// that rule.
func (d *Dialplan) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	for i, r := range d.rules {
		done, err := r.apply(ctx)
		if err != nil {
			return pipeline.Continue, fmt.Errorf("rule[%d]: %w", i, err)
		}
		if done {
			break
		}
	}
	return pipeline.Continue, nil
}
