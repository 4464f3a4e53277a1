package config

import (
	"strings"
)

// Errors is every mistake found in one config file. Each line of Error()
// reads as a path to one mistake: `config.toml: stage 3 (rewrite): when: ...`.
type Errors struct {
	File string
	List []error
}

// Add appends a mistake.
func (e *Errors) Add(err error) { e.List = append(e.List, err) }

// Len returns the number of mistakes.
func (e *Errors) Len() int { return len(e.List) }

// Lines returns one line per mistake, each prefixed with the file name.
func (e *Errors) Lines() []string {
	lines := make([]string, 0, len(e.List))
	for _, err := range e.List {
		lines = append(lines, e.File+": "+err.Error())
	}
	return lines
}

// Error joins the lines.
func (e *Errors) Error() string { return strings.Join(e.Lines(), "\n") }

// Unwrap returns the mistakes, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error { return e.List }
