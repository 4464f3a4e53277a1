package pipeline

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/switchboard-sip/switchboard/config"
)

// ruleFunctions are the functions a rule may call besides Env's fields.
var ruleFunctions = []string{"cidr"}

// nameHint returns `, did you mean "x"?` for the first name or field of a
// rule that Env lacks and that is a typo of one it has, or "". It reads
// the rule's syntax tree itself, so that the hint does not depend on the
// wording of expr's errors.
func nameHint(text string) string {
	tree, err := parser.Parse(text)
	if err != nil {
		return ""
	}
	h := &hinter{}
	ast.Walk(&tree.Node, h)
	return h.hint
}

// hinter walks a rule's tree, children first, for the first unknown name.
type hinter struct{ hint string }

func (h *hinter) Visit(node *ast.Node) {
	if h.hint != "" {
		return
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		env := reflect.TypeOf(Env{})
		if _, ok := exprField(env, n.Value); !ok {
			h.hint = config.DidYouMean(n.Value, append(exprNames(env), ruleFunctions...))
		}
	case *ast.MemberNode:
		t := nodeType(n.Node)
		prop, ok := n.Property.(*ast.StringNode)
		if t == nil || !ok {
			return
		}
		if _, ok := exprField(t, prop.Value); !ok {
			h.hint = config.DidYouMean(prop.Value, exprNames(t))
		}
	}
}

// nodeType returns the Env struct type that a name or a chain of fields
// (request.uri) reads, or nil.
func nodeType(n ast.Node) reflect.Type {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		t, _ := exprField(reflect.TypeOf(Env{}), n.Value)
		return t
	case *ast.MemberNode:
		prop, ok := n.Property.(*ast.StringNode)
		if outer := nodeType(n.Node); outer != nil && ok {
			t, _ := exprField(outer, prop.Value)
			return t
		}
	}
	return nil
}

// exprField returns the type of the field of struct t that rules name
// name, if t has one; a type that is not a struct has no fields to check.
func exprField(t reflect.Type, name string) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct {
		return nil, true
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("expr") == name {
			ft := t.Field(i).Type
			if ft.Kind() != reflect.Struct {
				ft = nil
			}
			return ft, true
		}
	}
	return nil, false
}

// exprNames lists the names rules give the fields of struct t.
func exprNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("expr"); name != "" {
			names = append(names, name)
		}
	}
	return names
}
