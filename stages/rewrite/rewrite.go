// Package rewrite is the rewrite stage: it sets, adds and removes headers of
// requests and responses, and sets the reason phrase of responses. It never
// touches the body, nor the headers the proxy manages (Via, From, To,
// Call-ID, CSeq, Content-Length, Max-Forwards).
package rewrite

import (
	"errors"
	"fmt"
	"sort"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "rewrite",
		Description: "sets, adds and removes headers of requests and responses, and the reason phrase of responses",
		New:         func() pipeline.Stage { return new(Rewrite) },
	})
}

// The values of apply_to.
const (
	ApplyRequests  = "requests"
	ApplyResponses = "responses"
	ApplyBoth      = "both"
)

// Rewrite changes the headers of the messages it runs on, in this order:
// remove_header, set_header, value_expr, add_header; then, on responses,
// the reason phrase.
type Rewrite struct {
	// Reason replaces the reason phrase of responses.
	Reason string `toml:"reason"`
	// SetHeader sets headers, by name: the first header of that name is
	// replaced in place and the others removed; a missing one is appended.
	SetHeader map[string]string `toml:"set_header"`
	// AddHeader appends headers, after any of the same name.
	AddHeader map[string]string `toml:"add_header"`
	// RemoveHeader removes every header of each name.
	RemoveHeader []string `toml:"remove_header"`
	// ValueExpr sets headers, as SetHeader does, to the string an expr
	// expression returns, run on every message against the rule environment.
	ValueExpr map[string]string `toml:"value_expr"`
	// ApplyTo is "requests", "responses" or "both" (the default).
	ApplyTo string `toml:"apply_to"`

	edits []edit
}

var (
	_ pipeline.RequestStage  = (*Rewrite)(nil)
	_ pipeline.ResponseStage = (*Rewrite)(nil)
	_ pipeline.Provisioner   = (*Rewrite)(nil)
	_ pipeline.Validator     = (*Rewrite)(nil)
)

// editKind is what an edit does.
type editKind int

const (
	removeEdit editKind = iota
	setEdit
	addEdit
)

// edit is one header change, ready to run.
type edit struct {
	kind editKind
	// key is the config key it comes from, for errors.
	key string
	// name is the header name as configured; canon its canonical form.
	name  string
	canon string
	// headers is the parsed value of set_header and add_header, cloned
	// into every message.
	headers []sip.Header
	// value computes the value of a value_expr.
	value *pipeline.Expr
}

// Validate checks the settings. It is fast and has no side effects; the
// pipeline runs it before Provision.
func (r *Rewrite) Validate() error {
	switch r.ApplyTo {
	case "", ApplyRequests, ApplyResponses, ApplyBoth:
	default:
		return fmt.Errorf("apply_to: %q is not one of %q, %q, %q", r.ApplyTo, ApplyRequests, ApplyResponses, ApplyBoth)
	}
	if r.Reason != "" {
		if err := checkText(r.Reason); err != nil {
			return fmt.Errorf("reason: %w", err)
		}
		if r.ApplyTo == ApplyRequests {
			return fmt.Errorf("reason: only responses have a reason phrase, but apply_to = %q", ApplyRequests)
		}
	}
	if r.Reason == "" && len(r.SetHeader) == 0 && len(r.AddHeader) == 0 && len(r.RemoveHeader) == 0 && len(r.ValueExpr) == 0 {
		return errors.New("nothing to do: give at least one of reason, set_header, add_header, remove_header, value_expr")
	}
	for _, key := range []struct {
		name   string
		values map[string]string
	}{{"set_header", r.SetHeader}, {"add_header", r.AddHeader}} {
		for _, name := range sortedNames(key.values) {
			if err := checkName(name); err != nil {
				return fmt.Errorf("%s: %w", key.name, err)
			}
			if _, err := makeHeaders(name, key.values[name]); err != nil {
				return fmt.Errorf("%s: %q: %w", key.name, name, err)
			}
		}
	}
	for i, name := range r.RemoveHeader {
		if err := checkName(name); err != nil {
			return fmt.Errorf("remove_header[%d]: %w", i, err)
		}
	}
	for _, name := range sortedNames(r.ValueExpr) {
		if err := checkName(name); err != nil {
			return fmt.Errorf("value_expr: %w", err)
		}
	}
	// A header set twice, by names that differ only in case or by
	// set_header and value_expr both, has no one value.
	seen := map[string]string{}
	for _, key := range []struct {
		name   string
		values map[string]string
	}{{"set_header", r.SetHeader}, {"value_expr", r.ValueExpr}} {
		for _, name := range sortedNames(key.values) {
			c := canonical(name)
			if prev, ok := seen[c]; ok {
				return fmt.Errorf("%s: %q is already set by %s: set a header once", key.name, name, prev)
			}
			seen[c] = fmt.Sprintf("%s %q", key.name, name)
		}
	}
	return nil
}

// Provision compiles the value_expr expressions and
// parses the header values.
func (r *Rewrite) Provision(b *pipeline.BuildContext) error {
	var edits []edit
	for _, name := range r.RemoveHeader {
		edits = append(edits, edit{kind: removeEdit, key: "remove_header", name: name, canon: canonical(name)})
	}
	for _, name := range sortedNames(r.SetHeader) {
		hs, _ := makeHeaders(name, r.SetHeader[name])
		edits = append(edits, edit{kind: setEdit, key: "set_header", name: name, canon: canonical(name), headers: hs})
	}
	for _, name := range sortedNames(r.ValueExpr) {
		x, err := pipeline.CompileExpr(r.ValueExpr[name])
		if err != nil {
			return fmt.Errorf("value_expr: %q: %w", name, err)
		}
		edits = append(edits, edit{kind: setEdit, key: "value_expr", name: name, canon: canonical(name), value: x})
	}
	for _, name := range sortedNames(r.AddHeader) {
		hs, _ := makeHeaders(name, r.AddHeader[name])
		edits = append(edits, edit{kind: addEdit, key: "add_header", name: name, canon: canonical(name), headers: hs})
	}
	r.edits = edits
	return nil
}

// ServeRequest rewrites ctx.Request in place, unless apply_to is
// "responses". It always continues; a value_expr that fails is returned as
// an error and leaves the request unchanged.
func (r *Rewrite) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	if r.ApplyTo == ApplyResponses {
		return pipeline.Continue, nil
	}
	return pipeline.Continue, r.rewrite(ctx.Request, ctx)
}

// ServeResponse rewrites ctx.Response, the proxy's own copy, in place,
// unless apply_to is "requests". A value_expr that fails is returned as an
// error and leaves the response unchanged.
func (r *Rewrite) ServeResponse(ctx *pipeline.ResponseContext) error {
	if r.ApplyTo == ApplyRequests {
		return nil
	}
	if err := r.rewrite(ctx.Response, ctx); err != nil {
		return err
	}
	if r.Reason != "" {
		ctx.Response.Reason = r.Reason
	}
	return nil
}

// rewrite applies the edits to m, the message of ctx. It computes every
// value first, so that a value_expr that fails changes nothing, and the
// expressions see the message as it came.
func (r *Rewrite) rewrite(m headerMessage, ctx pipeline.EnvSource) error {
	if len(r.edits) == 0 {
		return nil
	}
	values := make([][]sip.Header, len(r.edits))
	for i, e := range r.edits {
		switch {
		case e.value != nil:
			hs, err := e.eval(ctx)
			if err != nil {
				return err
			}
			values[i] = hs
		case e.headers != nil:
			values[i] = make([]sip.Header, len(e.headers))
			for j, h := range e.headers {
				values[i][j] = sip.HeaderClone(h)
			}
		}
	}
	list := newHeaderList(m.Headers())
	changed := false
	for i, e := range r.edits {
		switch e.kind {
		case removeEdit:
			changed = list.remove(e.canon) || changed
		case setEdit:
			list.set(e.canon, values[i])
			changed = true
		case addEdit:
			list.add(values[i])
			changed = true
		}
	}
	if changed {
		list.writeTo(m)
	}
	return nil
}

// eval runs a value_expr on the message of ctx and parses its value into
// headers.
func (e *edit) eval(ctx pipeline.EnvSource) ([]sip.Header, error) {
	s, err := e.value.Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w", e.key, e.name, err)
	}
	hs, err := makeHeaders(e.name, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w", e.key, e.name, err)
	}
	return hs, nil
}

// sortedNames returns the keys of m in order, so that edits and errors do
// not depend on map order.
func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
