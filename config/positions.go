package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Position is where a key is written in a config file, from 1.
type Position struct {
	Line, Column int
}

// Positions maps the key paths of a config file to where each key is
// written: "server.listen", "stage[3].when" (stages count from 1, as
// their labels do), "stage[3]" for the [[stage]] line itself.
type Positions map[string]Position

// Find returns the position of path, or of the nearest table or key that
// holds it: "server.listen[2]" is at server.listen's key, a key missing
// from stage 3 at its [[stage]] line.
func (ps Positions) Find(path string) (Position, bool) {
	for {
		if p, ok := ps[path]; ok {
			return p, true
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return Position{}, false
		}
		path = path[:i]
	}
}

// positionsOf reads where every key and table of a TOML document is
// written, and where a key or table is written a second time, if one is
// (the TOML decoder says which, but not where). A document that does not
// parse yields what was read before the mistake; the decoder reports the
// mistake itself.
func positionsOf(data []byte) (ps Positions, again *Position) {
	ps = Positions{}
	var p unstable.Parser
	p.Reset(data)
	arrays := map[string]int{} // how many [[name]] tables were read so far, by path
	// last is the path of the latest [[name]] table, by name: a table
	// inside it ([set.check] after [[set]]) is at "set[2].check".
	last := map[string]string{}
	prefix := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			name, first := dotted(e.Key())
			prefix = inArray(name, last)
			if e.Kind == unstable.ArrayTable {
				arrays[prefix]++
				prefix += "[" + strconv.Itoa(arrays[prefix]) + "]"
				last[name] = prefix
			}
			ps.add(&p, prefix, first, &again)
		case unstable.KeyValue:
			keyValue(&p, ps, prefix, e, &again)
		}
	}
	return ps, again
}

// inArray returns the path of the table name: inside the latest array
// table its name starts with, if any ("set.check" -> "set[2].check").
func inArray(name string, last map[string]string) string {
	for i := strings.LastIndex(name, "."); i > 0; i = strings.LastIndex(name[:i], ".") {
		if p, ok := last[name[:i]]; ok {
			return p + name[i:]
		}
	}
	return name
}

// keyValue records a key = value line under prefix, and the keys of an
// inline table value.
func keyValue(p *unstable.Parser, ps Positions, prefix string, e *unstable.Node, again **Position) {
	name, first := dotted(e.Key())
	path := join(prefix, name)
	ps.add(p, path, first, again)
	if v := e.Value(); v.Kind == unstable.InlineTable {
		for it := v.Children(); it.Next(); {
			keyValue(p, ps, path, it.Node(), again)
		}
	}
}

// dotted joins a dotted key and returns it with its first part.
func dotted(it unstable.Iterator) (string, *unstable.Node) {
	var parts []string
	var first *unstable.Node
	for it.Next() {
		n := it.Node()
		if first == nil {
			first = n
		}
		parts = append(parts, string(n.Data))
	}
	return strings.Join(parts, "."), first
}

// add records the position of path's key, or in again the first key
// written twice.
func (ps Positions) add(p *unstable.Parser, path string, key *unstable.Node, again **Position) {
	if key == nil || key.Raw.Length == 0 {
		return
	}
	s := p.Shape(key.Raw).Start
	pos := Position{Line: s.Line, Column: s.Column}
	if _, seen := ps[path]; seen {
		if *again == nil {
			*again = &pos
		}
		return
	}
	ps[path] = pos
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// CountFromOne turns the indexes of a key path that a decoder counts from
// 0 ("rule[0].match", "destination[0].weight") into places in the file,
// counted from 1 as the paths of Positions count tables.
func CountFromOne(key string) string {
	var b strings.Builder
	for {
		i := strings.Index(key, "[")
		j := strings.Index(key[i+1:], "]")
		if i < 0 || j < 0 {
			break
		}
		n, err := strconv.Atoi(key[i+1 : i+1+j])
		if err != nil {
			b.WriteString(key[:i+1+j+1])
		} else {
			b.WriteString(key[:i+1] + strconv.Itoa(n+1) + "]")
		}
		key = key[i+1+j+1:]
	}
	b.WriteString(key)
	return b.String()
}
