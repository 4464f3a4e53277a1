package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/switchboard-sip/switchboard/config"
)

// setFields are the fields of Env whose value is the name of a [[set]].
var setFields = map[string]bool{"source.set": true}

// unknownSet returns an error for the first string literal that rule
// compares a set-valued field with (==, !=, in) and that names none of
// sets, or nil: such a rule would never match, or always. "" (no set) is
// a name every rule may use.
func unknownSet(rule string, sets []string) error {
	tree, err := parser.Parse(rule)
	if err != nil {
		return nil
	}
	s := &setChecker{sets: sets}
	ast.Walk(&tree.Node, s)
	return s.err
}

// setChecker walks a rule's tree for comparisons of set-valued fields.
type setChecker struct {
	sets []string
	err  error
}

func (s *setChecker) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || s.err != nil {
		return
	}
	switch b.Operator {
	case "==", "!=":
		s.compare(b.Left, b.Right)
		s.compare(b.Right, b.Left)
	case "in", "not in":
		if arr, ok := b.Right.(*ast.ArrayNode); ok {
			for _, n := range arr.Nodes {
				s.compare(b.Left, n)
			}
		}
	}
}

// compare checks value, when field is a set-valued field and value a
// string literal.
func (s *setChecker) compare(field, value ast.Node) {
	name := strings.Join(envPath(field), ".")
	lit, ok := value.(*ast.StringNode)
	if s.err != nil || !setFields[name] || !ok || lit.Value == "" {
		return
	}
	for _, set := range s.sets {
		if set == lit.Value {
			return
		}
	}
	known := "none: declare one with [[set]], or name a trunk stage"
	if len(s.sets) > 0 {
		quoted := make([]string, len(s.sets))
		for i, set := range s.sets {
			quoted[i] = strconv.Quote(set)
		}
		known = strings.Join(quoted, ", ")
	}
	s.err = fmt.Errorf("%s: unknown set %q%s (sets: %s)", name, lit.Value, config.DidYouMean(lit.Value, s.sets), known)
}

// checkSourceSets reports the rules that compare source.set with a name
// it never has: neither a [[set]] (sets) nor a name a stage made known
// with AddSetMember (a trunk's). It runs once every stage is built, so
// that a rule may name a trunk declared after it.
func (p *Pipeline) checkSourceSets(sets []string, errs *config.Errors) {
	for _, m := range p.members {
		if !slices.Contains(sets, m.set) {
			sets = append(sets, m.set)
		}
	}
	cfg := p.Config
	if err := unknownSet(cfg.Log.TraceWhen, sets); err != nil {
		errs.AddAt("log.trace_when", fmt.Errorf("log: trace_when: %w", err))
	}
	for _, sc := range cfg.Stages {
		if err := unknownSet(sc.When, sets); err != nil {
			errs.AddAt(sc.Path("when"), fmt.Errorf("%s: when: %w", sc.Label(), err))
		}
	}
}
