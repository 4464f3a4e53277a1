package calllog

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestAttempts runs a call whose INVITE the engine sent to bob (busy),
// then, forwarded, to carol (who answers): the admin API's call view and
// the call's record, in csv and json, name the forward and both branches.
func TestAttempts(t *testing.T) {
	for _, format := range []string{"csv", "json"} {
		t.Run(format, func(t *testing.T) {
			cdrPath := filepath.Join(t.TempDir(), "cdr."+format)
			ch := mustChain(t, fmt.Sprintf("cdr_path = %q\ncdr_format = %q\ntime_zone = \"UTC\"", cdrPath, format), nil)
			a := &pipeline.Attempts{}
			c := newCall2(t, "fwd", "alice", "bob")
			inv := c.request(caller, "INVITE", false, 1, "")
			ch.request(t, inv, t0, func(ctx *pipeline.Context) { ctx.Attempts = a })
			a.Ended(a.Sent("sip:bob@127.0.0.3:5062", "127.0.0.3:5062"), 486)
			a.Forward("busy", "bob", "carol")
			carol := a.Sent("sip:carol@127.0.0.3:5064", "127.0.0.3:5064")
			c.respond(ch, inv, 180, t0.Add(time.Second), "", false)

			calls := ch.Services.Calls()
			if len(calls) != 1 || calls[0].ForwardedFrom != "bob" || len(calls[0].Attempts) != 2 || calls[0].Attempts[0].Code != 486 ||
				len(calls[0].Forwards) != 1 || calls[0].Forwards[0] != (pipeline.Diversion{Kind: "busy", From: "bob", To: "carol"}) {
				t.Errorf("the call view: %+v", calls)
			}

			a.Ended(carol, 200)
			c.respond(ch, inv, 200, t0.Add(2*time.Second), "", false)
			c.ack(ch, caller, inv, t0.Add(2*time.Second), "")
			c.send(ch, caller, "BYE", t0.Add(4*time.Second), "")
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			want := `,bob,486 sip:bob@127.0.0.3:5062 | 200 sip:carol@127.0.0.3:5064`
			if format == "json" {
				want = `,"forwarded_from":"bob","forwards":[{"kind":"busy","from":"bob","to":"carol"}],` +
					`"attempts":[{"uri":"sip:bob@127.0.0.3:5062","hop":"127.0.0.3:5062","code":486},{"uri":"sip:carol@127.0.0.3:5064","hop":"127.0.0.3:5064","code":200}]}`
			}
			lines := readLines(t, cdrPath)
			if len(lines) == 0 || !strings.HasSuffix(lines[len(lines)-1], want) {
				t.Errorf("the record:\n%s\nwant it to end with\n%s", strings.Join(lines, "\n"), want)
			}
		})
	}
}
