// Command customstage is Switchboard with one stage more: the built-in
// stages, plus the redirect stage of this example. A binary with your own
// stages is this file with your imports.
//
//	go build -o bin/customstage ./examples/customstage
//	bin/customstage -config examples/customstage/config.toml
//	bin/customstage stages
package main

import (
	"os"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/app"
	_ "github.com/switchboard-sip/switchboard/examples/customstage/redirect"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
