package calllog

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// TestAuthUserRecord checks that a call's record names the user the auth
// stage authenticated its INVITE as (auth_user), in csv and json: for a
// call the INVITE of which reaches the stage, and for one the auth stage
// refuses after its challenge (403 to a From that is not the user's),
// which the stage sees only through the answers.
func TestAuthUserRecord(t *testing.T) {
	as := func(user string) func(ch *chain, req *sip.Request, at time.Time) {
		return func(ch *chain, req *sip.Request, at time.Time) {
			ch.request(t, req, at, func(c *pipeline.Context) { c.AuthUser = user })
		}
	}
	answer := func(ch *chain, req *sip.Request, code int, user string, at time.Time) {
		res := sip.NewResponseFromRequest(req, code, reasons[code], nil)
		res.To().Params.Add("tag", "tag-bob")
		opts := append(made(code == 403 || code == 407), func(c *pipeline.ResponseContext) { c.AuthUser = user })
		ch.response(t, req, res, at, opts...)
	}
	flow := func(ch *chain) {
		// alice calls bob: challenged by auth (the stage sees the 407),
		// then let through as alice.
		c := newCall2(t, "authed", "alice", "bob")
		inv := c.request(caller, "INVITE", false, 1, "")
		answer(ch, inv, 407, "", t0)
		inv = c.request(caller, "INVITE", false, 2, "")
		as("alice")(ch, inv, t0.Add(time.Second))
		answer(ch, inv, 200, "", t0.Add(2*time.Second))
		c.cseq[caller] = 2
		c.send(ch, caller, "BYE", t0.Add(4*time.Second), "")

		// alice's password with carol-ceo's From: 407, then 403 from the
		// auth stage, which the call log sees as a response only.
		f := newCall2(t, "forged", "carol-ceo", "bob")
		inv = f.request(caller, "INVITE", false, 1, "")
		answer(ch, inv, 407, "", t0.Add(5*time.Second))
		inv = f.request(caller, "INVITE", false, 2, "")
		answer(ch, inv, 403, "alice", t0.Add(6*time.Second))

		// Without auth: no auth_user.
		n := newCall2(t, "open", "dave", "bob")
		inv = n.invite(ch, t0.Add(7*time.Second), "")
		answer(ch, inv, 486, "", t0.Add(8*time.Second))
	}
	_, cdrs := run(t, `time_zone = "UTC"`, flow)
	want := []string{
		"call_id,caller,callee,start,answer,end,duration,disposition,end_code,ended_by,transfer_target,auth_user,forwarded_from,attempts",
		"authed,alice,bob,2026-03-01T12:00:00.000Z,2026-03-01T12:00:02.000Z,2026-03-01T12:00:04.000Z,2.000,answered,,alice,,alice,,",
		"forged,carol-ceo,bob,2026-03-01T12:00:05.000Z,,2026-03-01T12:00:06.000Z,0.000,failed,403,,,alice,,",
		"open,dave,bob,2026-03-01T12:00:07.000Z,,2026-03-01T12:00:08.000Z,0.000,busy,486,bob,,,,",
	}
	if strings.Join(cdrs, "\n") != strings.Join(want, "\n") {
		t.Errorf("CDRs:\n%s\nwant:\n%s", strings.Join(cdrs, "\n"), strings.Join(want, "\n"))
	}
	_, cdrs = run(t, "cdr_format = \"json\"\ntime_zone = \"UTC\"", flow)
	wantJSON := []string{
		`{"call_id":"authed","caller":"alice","callee":"bob","start":"2026-03-01T12:00:00.000Z","answer":"2026-03-01T12:00:02.000Z","end":"2026-03-01T12:00:04.000Z","duration":2,"disposition":"answered","ended_by":"alice","auth_user":"alice"}`,
		`{"call_id":"forged","caller":"carol-ceo","callee":"bob","start":"2026-03-01T12:00:05.000Z","end":"2026-03-01T12:00:06.000Z","duration":0,"disposition":"failed","end_code":403,"auth_user":"alice"}`,
		`{"call_id":"open","caller":"dave","callee":"bob","start":"2026-03-01T12:00:07.000Z","end":"2026-03-01T12:00:08.000Z","duration":0,"disposition":"busy","end_code":486,"ended_by":"bob"}`,
	}
	if strings.Join(cdrs, "\n") != strings.Join(wantJSON, "\n") {
		t.Errorf("json CDRs:\n%s\nwant:\n%s", strings.Join(cdrs, "\n"), strings.Join(wantJSON, "\n"))
	}
}
