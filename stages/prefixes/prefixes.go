// Package prefixes is the prefixes stage: it picks the destination set of
// a request by the longest prefix of the number dialled (the Request-URI's
// user) in a table file, as a least-cost-routing table does.
package prefixes

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/prefix"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "prefixes",
		Description: "picks the destination set of a request by the longest prefix of the number dialled, from a CSV or TOML file",
		New:         func() pipeline.Stage { return new(Prefixes) },
	})
}

// Prefixes is the prefixes stage.
type Prefixes struct {
	// File is the table: a CSV (prefix,set) or TOML ("prefix" = "set")
	// file, relative to the config's folder. An edit to it alone reloads
	// it.
	File string `toml:"file"`

	table *prefix.File
	// sets are the names of the declared sets, once ValidateSets ran.
	sets atomic.Pointer[[]string]
}

var (
	_ pipeline.RequestStage = (*Prefixes)(nil)
	_ pipeline.Provisioner  = (*Prefixes)(nil)
	_ pipeline.Validator    = (*Prefixes)(nil)
	_ pipeline.SetValidator = (*Prefixes)(nil)
	_ pipeline.ReadOnly     = (*Prefixes)(nil)
)

// Validate checks that a file is named.
func (p *Prefixes) Validate() error {
	if p.File == "" {
		return errors.New(`file: missing: name the prefix table, for example file = "prefixes.csv"`)
	}
	return nil
}

// Provision loads the table and watches its file.
func (p *Prefixes) Provision(b *pipeline.BuildContext) error {
	f, err := prefix.Share(b, "prefixes", p.File, p.check)
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	p.table = f
	return nil
}

// ValidateSets checks that the table names only the given sets, and keeps
// them to check every reload of the file against.
func (p *Prefixes) ValidateSets(names []string) error {
	p.sets.Store(&names)
	if err := p.check(p.table.Table()); err != nil {
		return fmt.Errorf("file: %w", prefix.Located(p.table.Path(), err))
	}
	return nil
}

// check refuses a table that names a set not declared, once the sets are
// known.
func (p *Prefixes) check(t *prefix.Table) error {
	names := p.sets.Load()
	if names == nil {
		return nil
	}
	return t.CheckValues(func(set string) error {
		if !slices.Contains(*names, set) {
			return fmt.Errorf("unknown set %q (sets: %s)", set, strings.Join(*names, ", "))
		}
		return nil
	})
}

// ServeRequest sets ctx.Route to the set of the longest prefix of the
// Request-URI's user, and continues; a number no prefix matches leaves
// ctx.Route as it was.
func (p *Prefixes) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	if e, ok := p.table.Table().Longest(ctx.Request.Recipient.User); ok {
		ctx.Route = pipeline.Route{Set: e.Value, Prefix: e.Key}
	}
	return pipeline.Continue, nil
}

// ReadOnly reports that the stage changes nothing a rule reads.
func (*Prefixes) ReadOnly() bool { return true }
