// Package did is the did stage: it maps the number a call from a trunk is
// for (a DID) to the user it rings, by rewriting the Request-URI's user
// (and host) from a table file, so that the location stage finds the user.
package did

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/prefix"
)

func init() {
	pipeline.Register(pipeline.StageInfo{
		Name:        "did",
		Description: "maps incoming numbers (DIDs) to users: rewrites the Request-URI's user from a CSV or TOML file",
		New:         func() pipeline.Stage { return new(DID) },
	})
}

// DID is the did stage.
type DID struct {
	// File is the table: a CSV (number,user) or TOML ("number" = "user")
	// file, relative to the config's folder. A user may be "user@domain".
	// An edit to it alone reloads it.
	File string `toml:"file"`

	table *prefix.File
}

var (
	_ pipeline.RequestStage = (*DID)(nil)
	_ pipeline.Provisioner  = (*DID)(nil)
	_ pipeline.Validator    = (*DID)(nil)
)

// Validate checks the settings.
func (d *DID) Validate() error {
	if d.File == "" {
		return errors.New(`file: missing: name the DID table, for example file = "dids.csv"`)
	}
	return nil
}

// Provision loads the table and watches its file.
func (d *DID) Provision(b *pipeline.BuildContext) error {
	f, err := prefix.Share(b, "did", d.File, func(t *prefix.Table) error { return t.CheckValues(checkUser) })
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	d.table = f
	return nil
}

// checkUser checks a value of the table: "user" or "user@domain".
func checkUser(v string) error {
	user, host, hasHost := strings.Cut(v, "@")
	if user == "" || (hasHost && host == "") {
		return fmt.Errorf("%q is not a user or user@domain", v)
	}
	if strings.Count(v, "@") > 1 {
		return fmt.Errorf("%q has more than one @", v)
	}
	for _, c := range v {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("<>:;?\"", c) {
			return fmt.Errorf("%q: %q is not allowed in a user", v, string(c))
		}
	}
	return nil
}

// ServeRequest rewrites the Request-URI of a number in the table to its
// user, and continues; a number not in the table goes on as it is (the
// location stage answers 404 for it).
func (d *DID) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	e, ok := d.table.Table().Exact(ctx.Request.Recipient.User)
	if !ok {
		return pipeline.Continue, nil
	}
	user, host, hasHost := strings.Cut(e.Value, "@")
	ctx.Request.Recipient.User = user
	if hasHost {
		ctx.Request.Recipient.Host = host
	}
	return pipeline.Continue, nil
}
