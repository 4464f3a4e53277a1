package config

import (
	"fmt"
	"strings"
)

// Errors is every mistake found in one config file. Each line of Error()
// reads as a path to one mistake, after the line and column where it is
// written when that is known: `config.toml:12:1: stage 3 (rewrite): when: ...`.
type Errors struct {
	File string
	List []error
	// Positions place the mistakes added with AddAt.
	Positions Positions
}

// located is a mistake at a key path of the file, or at a position the
// TOML decoder gave.
type located struct {
	path string
	pos  Position
	err  error
}

func (l *located) Error() string { return l.err.Error() }
func (l *located) Unwrap() error { return l.err }

// Add appends a mistake that no key of the file holds.
func (e *Errors) Add(err error) { e.List = append(e.List, err) }

// AddAt appends a mistake in the key at path ("server.listen[2]",
// "stage[3].when"): its line shows where that key, or the table that
// lacks it, is written.
func (e *Errors) AddAt(path string, err error) {
	e.List = append(e.List, &located{path: path, err: err})
}

// addPos appends a mistake at a position in the file.
func (e *Errors) addPos(line, column int, err error) {
	e.List = append(e.List, &located{pos: Position{Line: line, Column: column}, err: err})
}

// Len returns the number of mistakes.
func (e *Errors) Len() int { return len(e.List) }

// Lines returns one line per mistake, each prefixed with the file name,
// and the line and column when known.
func (e *Errors) Lines() []string {
	lines := make([]string, 0, len(e.List))
	for _, err := range e.List {
		lines = append(lines, e.where(err)+": "+err.Error())
	}
	return lines
}

// where returns "file:line:column", or the file name alone.
func (e *Errors) where(err error) string {
	l, ok := err.(*located)
	if !ok {
		return e.File
	}
	pos := l.pos
	if l.path != "" {
		if pos, ok = e.Positions.Find(l.path); !ok {
			return e.File
		}
	}
	return fmt.Sprintf("%s:%d:%d", e.File, pos.Line, pos.Column)
}

// Error joins the lines.
func (e *Errors) Error() string { return strings.Join(e.Lines(), "\n") }

// Unwrap returns the mistakes, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error { return e.List }
