// Package prefix holds the number tables of the dial plan: a prefix table
// that picks a destination set by the longest prefix of the number dialled
// (LCR-lite), and a DID table that maps an incoming number to a user. Both
// load from a CSV or TOML file and reload when it changes.
package prefix

import "fmt"

// alphabet are the characters of a dial string, each with its place in a
// node's children.
const alphabet = "0123456789+*#"

// index maps a byte to its place in alphabet, or -1.
var index = func() (out [256]int8) {
	for i := range out {
		out[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		out[alphabet[i]] = int8(i)
	}
	return out
}()

// Entry is one row of a table: a number, or the prefix of numbers, and
// its value (a set's name, a user).
type Entry struct {
	Key   string
	Value string
	// Line is where the row is in its file, for errors.
	Line int
}

// Table is a trie of dial strings: a lookup walks the number once, a
// character at a time, so its cost grows with the number's length and not
// with the table's size. A Table is not changed once built, and is safe
// for concurrent lookups.
type Table struct {
	nodes   []node
	entries []Entry
}

// node is one character of a key; entry is the index of the entry that
// ends here, or -1.
type node struct {
	next  [len(alphabet)]int32
	entry int32
}

// NewTable builds a table of entries. A key must be a dial string (digits,
// '+', '*', '#') and appear once.
func NewTable(entries []Entry) (*Table, error) {
	t := &Table{nodes: []node{{entry: -1}}, entries: entries}
	for i, e := range entries {
		if err := CheckKey(e.Key); err != nil {
			return nil, lined(e.Line, err)
		}
		n := int32(0)
		for j := 0; j < len(e.Key); j++ {
			c := index[e.Key[j]]
			if t.nodes[n].next[c] == 0 {
				t.nodes = append(t.nodes, node{entry: -1})
				t.nodes[n].next[c] = int32(len(t.nodes) - 1)
			}
			n = t.nodes[n].next[c]
		}
		if prev := t.nodes[n].entry; prev >= 0 {
			return nil, lined(e.Line, fmt.Errorf("%q is given twice (first on line %d)", e.Key, entries[prev].Line))
		}
		t.nodes[n].entry = int32(i)
	}
	return t, nil
}

// CheckKey checks that key is a dial string: digits, '+', '*' and '#'.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty number")
	}
	for i := 0; i < len(key); i++ {
		if index[key[i]] < 0 {
			return fmt.Errorf("%q is not a number: %q is not a digit, '+', '*' or '#'", key, key[i:i+1])
		}
	}
	return nil
}

// Longest returns the entry whose key is the longest prefix of number.
func (t *Table) Longest(number string) (Entry, bool) {
	best := int32(-1)
	n := int32(0)
	for i := 0; i < len(number); i++ {
		c := index[number[i]]
		if c < 0 {
			break
		}
		if n = t.nodes[n].next[c]; n == 0 {
			break
		}
		if e := t.nodes[n].entry; e >= 0 {
			best = e
		}
	}
	if best < 0 {
		return Entry{}, false
	}
	return t.entries[best], true
}

// Exact returns the entry whose key is number.
func (t *Table) Exact(number string) (Entry, bool) {
	n := int32(0)
	for i := 0; i < len(number); i++ {
		c := index[number[i]]
		if c < 0 {
			return Entry{}, false
		}
		if n = t.nodes[n].next[c]; n == 0 {
			return Entry{}, false
		}
	}
	if e := t.nodes[n].entry; e >= 0 && n != 0 {
		return t.entries[e], true
	}
	return Entry{}, false
}

// Entries returns the rows of the table, in file order.
func (t *Table) Entries() []Entry { return t.entries }

// Len returns the number of rows; 0 for a nil table (a file never
// loaded).
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}
