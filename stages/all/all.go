// Package all links in every built-in stage, the way database/sql drivers
// are linked in: import it blank from a main package.
package all

import (
	_ "github.com/switchboard-sip/switchboard/stages/auth"
	_ "github.com/switchboard-sip/switchboard/stages/callforward"
	_ "github.com/switchboard-sip/switchboard/stages/calllog"
	_ "github.com/switchboard-sip/switchboard/stages/dialplan"
	_ "github.com/switchboard-sip/switchboard/stages/did"
	_ "github.com/switchboard-sip/switchboard/stages/dispatch"
	_ "github.com/switchboard-sip/switchboard/stages/forward"
	_ "github.com/switchboard-sip/switchboard/stages/location"
	_ "github.com/switchboard-sip/switchboard/stages/parse"
	_ "github.com/switchboard-sip/switchboard/stages/prefixes"
	_ "github.com/switchboard-sip/switchboard/stages/ratelimit"
	_ "github.com/switchboard-sip/switchboard/stages/record_route"
	_ "github.com/switchboard-sip/switchboard/stages/registrar"
	_ "github.com/switchboard-sip/switchboard/stages/rewrite"
	_ "github.com/switchboard-sip/switchboard/stages/trunk"
)
