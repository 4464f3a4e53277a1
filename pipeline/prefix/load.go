package prefix

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// LineError is a mistake on one line of a table file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

func lined(line int, err error) error {
	if line == 0 {
		return err
	}
	return &LineError{Line: line, Err: err}
}

// Load reads a table file: CSV for a name ending in .csv, TOML for .toml.
// Its errors begin with the file's name and the line: `routes.csv:12: ...`.
func Load(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Read(path, data)
}

// Read parses data, the content of the table file path, as Load does.
func Read(path string, data []byte) (*Table, error) {
	entries, err := Parse(filepath.Ext(path), data)
	if err == nil {
		var t *Table
		if t, err = NewTable(entries); err == nil {
			return t, nil
		}
	}
	return nil, Located(path, err)
}

// Located puts the file's name, and its line for a *LineError, in front of
// err: `routes.csv:12: ...`.
func Located(path string, err error) error {
	var le *LineError
	if errors.As(err, &le) {
		return fmt.Errorf("%s:%d: %w", path, le.Line, le.Err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// CheckValues runs check on each row's value, and returns the first
// mistake with its line.
func (t *Table) CheckValues(check func(value string) error) error {
	for _, e := range t.entries {
		if err := check(e.Value); err != nil {
			return lined(e.Line, fmt.Errorf("%q: %w", e.Key, err))
		}
	}
	return nil
}

// Parse reads the rows of a table file by its extension, ".csv" or ".toml".
func Parse(ext string, data []byte) ([]Entry, error) {
	switch strings.ToLower(ext) {
	case ".csv":
		return parseCSV(data)
	case ".toml":
		return parseTOML(data)
	}
	return nil, fmt.Errorf("unknown format %q: name the file *.csv or *.toml", ext)
}

// parseCSV reads rows of two fields, the number and its value. Lines that
// begin with '#' are comments; a first row "prefix,..." or "number,..." is
// a header.
func parseCSV(data []byte) ([]Entry, error) {
	r := csv.NewReader(strings.NewReader(string(data)))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var out []Entry
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, lined(pe.StartLine, pe.Err) // where the record begins: an unclosed quote runs on
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if len(rec) != 2 {
			return nil, lined(line, fmt.Errorf("%d fields, want 2: number,value", len(rec)))
		}
		key, value := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if first && (strings.EqualFold(key, "prefix") || strings.EqualFold(key, "number")) {
			continue
		}
		if value == "" {
			return nil, lined(line, fmt.Errorf("%q: empty value", key))
		}
		out = append(out, Entry{Key: key, Value: value, Line: line})
	}
}

// parseTOML reads top-level keys with string values: "0903" = "mobile".
func parseTOML(data []byte) ([]Entry, error) {
	var p unstable.Parser
	p.Reset(data)
	lineOf := func(b []byte) int {
		if len(b) == 0 {
			return 0
		}
		return p.Shape(p.Range(b)).Start.Line
	}
	var out []Entry
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.KeyValue:
		case unstable.Table, unstable.ArrayTable:
			keys := n.Key()
			keys.Next()
			return nil, lined(lineOf(p.Raw(keys.Node().Raw)), errors.New(`a table: write each row as "number" = "value", at the top`))
		default:
			continue
		}
		keys := n.Key()
		keys.Next()
		k := keys.Node()
		line := lineOf(p.Raw(k.Raw))
		if !keys.IsLast() {
			return nil, lined(line, errors.New("dotted key: quote the number, as in \"+421.9\" = \"set\""))
		}
		v := n.Value()
		if v.Kind != unstable.String {
			return nil, lined(line, fmt.Errorf("%q: the value is not a string (%s)", k.Data, v.Kind))
		}
		if len(v.Data) == 0 {
			return nil, lined(line, fmt.Errorf("%q: empty value", k.Data))
		}
		out = append(out, Entry{Key: string(k.Data), Value: string(v.Data), Line: line})
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			return nil, lined(lineOf(pe.Highlight), errors.New(pe.Message))
		}
		return nil, err
	}
	return out, nil
}
