package pipeline

import "fmt"

// Route is what the dial plan decided about where a request goes, for the
// stages after it: the prefixes stage picks a destination set by the
// longest prefix of the number dialled, and the stage that sends requests
// to destination sets sends it there.
type Route struct {
	// Set names the destination set ([[set]]) the request goes to; "" when
	// no stage picked one.
	Set string
	// Prefix is the row of the prefix table that picked Set, for the trace.
	Prefix string
}

// SetValidator is implemented by stages that name destination sets in
// data of their own, such as the prefixes stage's table file: given the
// names of the sets the config declares, ValidateSets reports a set that
// is not one of them, with the file and line that names it. The stage
// keeps the names, and checks every reload of its file against them.
type SetValidator interface {
	ValidateSets(names []string) error
}

// ValidateSets runs ValidateSets of every stage that is a SetValidator,
// and returns their mistakes, each with the stage's label. Build calls it
// with the names of the config's destination sets.
func (p *Pipeline) ValidateSets(names []string) []error {
	var errs []error
	for _, e := range p.stages {
		if v, ok := e.stage.(SetValidator); ok {
			if err := v.ValidateSets(names); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", e.label, err))
			}
		}
	}
	return errs
}
