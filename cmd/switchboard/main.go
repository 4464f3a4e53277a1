// Command switchboard is the Switchboard SIP proxy and registrar, with the
// built-in stages.
//
//	switchboard [run] [-config config.toml] [-listen udp://127.0.0.1:5060]...
//	switchboard validate [-config config.toml | config.toml]
//	switchboard stages
//	switchboard version
//	switchboard store check FILE
package main

import (
	"os"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/app"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
