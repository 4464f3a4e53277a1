package calllog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// t0 is when the test calls start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sdp returns a session description: an audio stream with the direction
// dir ("" for none) on address conn, and a video stream on videoPort when
// videoPort >= 0.
func sdp(dir, conn string, videoPort int) string {
	lines := []string{"v=0", "o=- 1 1 IN IP4 127.0.0.2", "s=-", "c=IN IP4 " + conn, "t=0 0", "m=audio 7078 RTP/AVP 0"}
	if dir != "" {
		lines = append(lines, "a="+dir)
	}
	if videoPort >= 0 {
		lines = append(lines, fmt.Sprintf("m=video %d RTP/AVP 96", videoPort), "a=rtpmap:96 VP8/90000")
	}
	return strings.Join(lines, "\n")
}

// reasons are the reason phrases of the responses the tests make.
var reasons = map[int]string{
	100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 401: "Unauthorized", 403: "Forbidden",
	404: "Not Found", 407: "Proxy Authentication Required", 408: "Request Timeout", 423: "Interval Too Brief",
	480: "Temporarily Unavailable", 486: "Busy Here", 487: "Request Terminated", 491: "Request Pending",
	500: "Internal Server Error", 600: "Busy Everywhere", 603: "Decline",
}

// testCall is a call between two phones, built by hand.
type testCall struct {
	t      *testing.T
	callID string
	users  [2]string
	tags   [2]string
	cseq   [2]int
}

func newCall2(t *testing.T, callID, from, to string) *testCall {
	return &testCall{t: t, callID: callID, users: [2]string{from, to}, tags: [2]string{"tag-" + from, "tag-" + to}, cseq: [2]int{1, 100}}
}

// request builds a request from party p; inDialog adds the other's tag.
func (c *testCall) request(p int, method string, inDialog bool, cseq int, body string, headers ...string) *sip.Request {
	to := "To: <sip:" + c.users[1-p] + "@127.0.0.1>"
	if inDialog {
		to += ";tag=" + c.tags[1-p]
	}
	lines := []string{
		fmt.Sprintf("%s sip:%s@127.0.0.1 SIP/2.0", method, c.users[1-p]),
		fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-%s-%d-%s;rport", strings.ReplaceAll(c.callID, ",", "-"), cseq, method),
		"Max-Forwards: 70",
		"From: <sip:" + c.users[p] + "@127.0.0.1>;tag=" + c.tags[p],
		to,
		"Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
	}
	if method != "REGISTER" {
		lines = append(lines, "Contact: <sip:"+c.users[p]+"@127.0.0.2:5060>")
	}
	lines = append(lines, headers...)
	if body != "" {
		lines = append(lines, "Content-Type: application/sdp")
	}
	if body != "" {
		body += "\n"
	}
	return stagetest.Request(c.t, strings.Join(lines, "\n")+"\n\n"+body)
}

// invite sends the initial INVITE.
func (c *testCall) invite(ch *chain, at time.Time, body string) *sip.Request {
	req := c.request(caller, "INVITE", false, c.cseq[caller], body)
	ch.request(c.t, req, at)
	return req
}

// send sends a request in the dialog from party from.
func (c *testCall) send(ch *chain, from int, method string, at time.Time, body string, headers ...string) *sip.Request {
	c.cseq[from]++
	req := c.request(from, method, true, c.cseq[from], body, headers...)
	ch.request(c.t, req, at)
	return req
}

// ack sends the ACK of the INVITE req from party from.
func (c *testCall) ack(ch *chain, from int, req *sip.Request, at time.Time, body string) {
	ack := c.request(from, "ACK", true, int(req.CSeq().SeqNo), body)
	ch.request(c.t, ack, at)
}

// respond answers req with code, from the party req was sent to.
func (c *testCall) respond(ch *chain, req *sip.Request, code int, at time.Time, body string, local bool) {
	res := sip.NewResponseFromRequest(req, code, reasons[code], nil)
	if code > 100 {
		tag := c.tags[callee]
		if to := req.To(); to != nil && to.Params.Has("tag") {
			tag, _ = to.Params.Get("tag")
		}
		res.To().Params.Add("tag", tag)
	}
	if body != "" {
		body = strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(body))
	}
	ch.response(c.t, req, res, at, made(local)...)
}

// answered runs an INVITE answered 2s later, and its ACK.
func (c *testCall) answered(ch *chain, at time.Time) {
	inv := c.invite(ch, at, sdp("", "127.0.0.2", -1))
	c.respond(ch, inv, 180, at.Add(time.Second), "", false)
	c.respond(ch, inv, 200, at.Add(2*time.Second), sdp("", "127.0.0.3", -1), false)
	c.ack(ch, caller, inv, at.Add(2100*time.Millisecond), "")
}

// run builds a chain of one calllog stage with keys (path and cdr_path
// added), runs fn on it, and returns the event log's and the records'
// lines.
func run(t *testing.T, keys string, fn func(ch *chain)) (events, cdrs []string) {
	t.Helper()
	ev, cd := tempPaths(t)
	ch := mustChain(t, fmt.Sprintf("path = %q\ncdr_path = %q\n%s", ev, cd, keys), nil)
	fn(ch)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	return readLines(t, ev), readLines(t, cd)
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		keys string
		err  string // "" for none
	}{
		{keys: fmt.Sprintf("path = %q", filepath.Join(dir, "a.log"))},
		{keys: fmt.Sprintf("cdr_path = %q\ncdr_format = \"json\"", filepath.Join(dir, "a.json"))},
		{keys: "", err: "stage 1 (calllog): nothing to write: give path"},
		{keys: `path = "-"`, err: "nothing to write"},
		{keys: fmt.Sprintf("path = %q\nformat = \"xml\"", filepath.Join(dir, "a.log")), err: `stage 1 (calllog): format: "xml" is not "seed" or "json"`},
		{keys: fmt.Sprintf("path = %q\ncdr_format = \"xls\"", filepath.Join(dir, "a.log")), err: `cdr_format: "xls" is not "csv" or "json"`},
		{keys: fmt.Sprintf("path = %q\ntime_zone = \"Mars/Olympus\"", filepath.Join(dir, "a.log")), err: `stage 1 (calllog): time_zone: "Mars/Olympus" is not a time zone`},
		{keys: fmt.Sprintf("path = %q\nformat = \"json\"\nseed_only = true", filepath.Join(dir, "a.log")), err: `seed_only: applies to format = "seed" only`},
		{keys: fmt.Sprintf("path = %q\nmax_call = \"0s\"", filepath.Join(dir, "a.log")), err: `max_call: "0s" is not a positive duration`},
		{keys: fmt.Sprintf("path = %q\nmax_calls = 0", filepath.Join(dir, "a.log")), err: "max_calls: 0 is not a positive number"},
		{keys: fmt.Sprintf("path = %q\nmax_call = 12", filepath.Join(dir, "a.log")), err: "max_call:"},
		{keys: fmt.Sprintf("path = %q\ncdr_path = %q", filepath.Join(dir, "a.log"), filepath.Join(dir, "a.log")), err: "cdr_path: " + fmt.Sprintf("%q", filepath.Join(dir, "a.log")) + " is the event log's path too"},
		{keys: fmt.Sprintf("path = %q", filepath.Join(dir, "missing", "a.log")), err: "stage 1 (calllog): path: open "},
		{keys: fmt.Sprintf("path = %q\nfile = \"x\"", filepath.Join(dir, "a.log")), err: "file: unknown key"},
	}
	for i, tc := range tests {
		_, err := newChain(t, tc.keys, nil)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.err != "" && err == nil:
			t.Errorf("test %d: no error, want %q", i, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("test %d: error %q, want %q", i, err, tc.err)
		}
	}
}

// TestEndings covers how an unanswered call ends, in both event formats
// and in the records.
func TestEndings(t *testing.T) {
	tests := []struct {
		code     int
		local    bool
		rang     bool
		seed     string // "" for no line
		seedOnly bool   // the line is one of the seed's events
		event    string
		disp     string
		endedBy  string
	}{
		{code: 487, rang: true, seed: "487,alice,bob,Call hung up by alice", seedOnly: true, event: "CALL CANCELLED", disp: "cancelled", endedBy: "alice"},
		{code: 487, local: true, seed: "487,alice,bob,Call hung up by alice", seedOnly: true, event: "CALL CANCELLED", disp: "cancelled", endedBy: "alice"},
		{code: 603, rang: true, seed: "603,alice,bob,Call hung up by bob", seedOnly: true, event: "CALL REJECTED", disp: "rejected", endedBy: "bob"},
		{code: 486, seed: "486,alice,bob,Call rejected by bob", event: "CALL REJECTED", disp: "busy", endedBy: "bob"},
		{code: 600, seed: "600,alice,bob,Call rejected by bob", event: "CALL REJECTED", disp: "busy", endedBy: "bob"},
		{code: 403, seed: "403,alice,bob,Call rejected by bob", event: "CALL REJECTED", disp: "rejected", endedBy: "bob"},
		{code: 408, local: true, rang: true, seed: "408,alice,bob,No answer", event: "NO ANSWER", disp: "no_answer"},
		{code: 480, seed: "480,alice,bob,No answer", event: "NO ANSWER", disp: "no_answer"},
		{code: 404, local: true, seed: "404,alice,bob,Call failed: Not Found", event: "CALL FAILED", disp: "failed"},
		{code: 500, seed: "500,alice,bob,Call failed: Internal Server Error", event: "CALL FAILED", disp: "failed"},
	}
	for i, tc := range tests {
		flow := func(ch *chain) {
			c := newCall2(t, fmt.Sprintf("end-%d", i), "alice", "bob")
			inv := c.invite(ch, t0, sdp("", "127.0.0.2", -1))
			c.respond(ch, inv, 100, t0, "", true)
			if tc.rang {
				c.respond(ch, inv, 180, t0.Add(time.Second), "", false)
			}
			c.respond(ch, inv, tc.code, t0.Add(3*time.Second), "", tc.local)
			// The ACK of a non-2xx never reaches the stages; a stray one
			// changes nothing.
			c.ack(ch, caller, inv, t0.Add(4*time.Second), "")
		}
		want := []string{"INVITE,alice,bob"}
		if tc.rang {
			want = append(want, "RINGING,alice,bob")
		}
		want = append(want, tc.seed)
		events, cdrs := run(t, `time_zone = "UTC"`, flow)
		if got := fields(events); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("test %d: seed log:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		wantCDR := fmt.Sprintf("end-%d,alice,bob,2026-03-01T12:00:00.000Z,,2026-03-01T12:00:03.000Z,0.000,%s,%d,%s,,,,", i, tc.disp, tc.code, tc.endedBy)
		if len(cdrs) != 2 || cdrs[1] != wantCDR {
			t.Errorf("test %d: CDR %q, want %q", i, cdrs, wantCDR)
		}

		events, _ = run(t, "seed_only = true", flow)
		want = []string{"INVITE,alice,bob"}
		if tc.seedOnly {
			want = append(want, tc.seed)
		}
		if got := fields(events); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("test %d: seed_only log:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		events, _ = run(t, "format = \"json\"\ncdr_format = \"json\"", flow)
		last := map[string]any{}
		if err := json.Unmarshal([]byte(events[len(events)-1]), &last); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		_, detail, _ := strings.Cut(strings.TrimPrefix(tc.seed, fmt.Sprintf("%d,", tc.code)), "bob,")
		if last["event"] != tc.event || last["code"] != float64(tc.code) || last["detail"] != detail || last["call_id"] != fmt.Sprintf("end-%d", i) {
			t.Errorf("test %d: json %v, want event %q code %d detail %q", i, last, tc.event, tc.code, detail)
		}
	}
}

// TestAnsweredCall follows a whole call: ringing, answer, hold, resume,
// video on and off, a transfer, and the BYE of the callee.
func TestAnsweredCall(t *testing.T) {
	flow := func(ch *chain) {
		c := newCall2(t, "call-1", "alice", "bob")
		c.answered(ch, t0)
		at := t0.Add(10 * time.Second)
		step := func(from int, body, answer string) {
			req := c.send(ch, from, "INVITE", at, body)
			c.respond(ch, req, 100, at, "", true)
			c.respond(ch, req, 200, at.Add(50*time.Millisecond), answer, false)
			c.ack(ch, from, req, at.Add(100*time.Millisecond), "")
			at = at.Add(10 * time.Second)
		}
		step(caller, sdp("sendonly", "127.0.0.2", -1), sdp("recvonly", "127.0.0.3", -1))
		step(caller, sdp("sendrecv", "127.0.0.2", -1), sdp("", "127.0.0.3", -1))
		step(callee, sdp("", "127.0.0.3", 9078), sdp("", "127.0.0.2", 9078))
		step(caller, sdp("", "127.0.0.2", 0), sdp("", "127.0.0.3", 0))
		step(callee, sdp("", "127.0.0.3", -1), sdp("", "127.0.0.2", -1))
		// A re-INVITE refused (491) is logged, but its ACK never comes
		// to the stages and it changes nothing.
		req := c.send(ch, callee, "INVITE", at, sdp("inactive", "127.0.0.3", -1))
		c.respond(ch, req, 491, at, "", false)
		ref := c.send(ch, callee, "REFER", at.Add(time.Second), "", "Refer-To: <sip:carol@127.0.0.1>", "Referred-By: <sip:bob@127.0.0.1>")
		c.respond(ch, ref, 202, at.Add(time.Second), "", false)
		c.send(ch, callee, "BYE", at.Add(2*time.Second+345*time.Millisecond), "")
		// A BYE of the other party crossing the first changes nothing.
		c.send(ch, caller, "BYE", at.Add(2*time.Second+400*time.Millisecond), "")
	}
	events, cdrs := run(t, `time_zone = "Europe/Ljubljana"`, flow)
	want := []string{
		"INVITE,alice,bob",
		"RINGING,alice,bob",
		"CALL STARTED,alice,bob",
		"HOLD,alice,bob",
		"SWITCH ACK,alice,bob",
		"RESUME,alice,bob",
		"SWITCH ACK,alice,bob",
		"VIDEO ON,bob,alice",
		"SWITCH ACK,bob,alice",
		"VIDEO OFF,alice,bob",
		"SWITCH ACK,alice,bob",
		"SWITCH INVITE,bob,alice",
		"SWITCH ACK,bob,alice",
		"HOLD,bob,alice",
		"TRANSFER,bob,alice,Transfer to carol",
		"CALL ENDED,bob,alice,Call duration: 60.35 seconds",
	}
	if got := fields(events); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(cdrs) != 2 {
		t.Fatalf("CDRs: %q", cdrs)
	}
	_, row, _ := strings.Cut(cdrs[1], ",")
	if want := "alice,bob,2026-03-01T13:00:00.000+01:00,2026-03-01T13:00:02.000+01:00,2026-03-01T13:01:02.345+01:00,60.345,answered,,bob,carol,,,"; row != want {
		t.Errorf("CDR %q, want %q", row, want)
	}

	events, cdrs = run(t, "format = \"json\"\ncdr_format = \"json\"\ntime_zone = \"UTC\"", flow)
	var objs []map[string]any
	for _, l := range events {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		objs = append(objs, m)
	}
	wantJSON := []string{
		`{"call_id":"call-1","callee":"bob","caller":"alice","event":"INVITE","time":"2026-03-01T12:00:00.000Z"}`,
		`{"call_id":"call-1","callee":"bob","caller":"alice","event":"RINGING","time":"2026-03-01T12:00:01.000Z"}`,
		`{"call_id":"call-1","callee":"bob","caller":"alice","event":"CALL STARTED","time":"2026-03-01T12:00:02.000Z"}`,
		`{"by":"alice","call_id":"call-1","callee":"bob","caller":"alice","event":"HOLD","time":"2026-03-01T12:00:10.000Z"}`,
		`{"by":"alice","call_id":"call-1","callee":"bob","caller":"alice","event":"SWITCH ACK","time":"2026-03-01T12:00:10.100Z"}`,
	}
	for i, w := range wantJSON {
		got, _ := json.Marshal(objs[i])
		if string(got) != w {
			t.Errorf("json line %d: %s, want %s", i, got, w)
		}
	}
	n := len(objs)
	transfer, _ := json.Marshal(objs[n-2])
	ended, _ := json.Marshal(objs[n-1])
	if w := `{"by":"bob","call_id":"call-1","callee":"bob","caller":"alice","event":"TRANSFER","target":"carol","time":"2026-03-01T12:01:01.000Z"}`; string(transfer) != w {
		t.Errorf("json: %s, want %s", transfer, w)
	}
	if w := `{"by":"bob","call_id":"call-1","callee":"bob","caller":"alice","duration_ms":60345,"event":"CALL ENDED","time":"2026-03-01T12:01:02.345Z"}`; string(ended) != w {
		t.Errorf("json: %s, want %s", ended, w)
	}
	// The raw line keeps the documented key order.
	if !strings.HasPrefix(events[n-1], `{"time":"2026-03-01T12:01:02.345Z","event":"CALL ENDED","call_id":"call-1","caller":"alice","callee":"bob","by":"bob","duration_ms":60345}`) {
		t.Errorf("json line: %s", events[n-1])
	}
	if len(cdrs) != 1 {
		t.Fatalf("json CDRs: %q", cdrs)
	}
	if w := `{"call_id":"call-1","caller":"alice","callee":"bob","start":"2026-03-01T12:00:00.000Z","answer":"2026-03-01T12:00:02.000Z","end":"2026-03-01T12:01:02.345Z","duration":60.345,"disposition":"answered","ended_by":"bob","transfer_target":"carol"}`; cdrs[0] != w {
		t.Errorf("json CDR:\n%s\nwant:\n%s", cdrs[0], w)
	}
}

// TestCSVRecords checks the CSV file: a header only in a new file, one row
// per call, quoting where a field needs it.
func TestCSVRecords(t *testing.T) {
	dir := t.TempDir()
	cdrPath := filepath.Join(dir, "cdr.csv")
	for round := 0; round < 2; round++ {
		ch := mustChain(t, fmt.Sprintf("cdr_path = %q\ntime_zone = \"UTC\"", cdrPath), nil)
		c := newCall2(t, fmt.Sprintf("id,%d", round), "alice", "bob")
		c.answered(ch, t0)
		// 5.0015 s: written as 5.001, so the duration is 3.001 (end minus
		// answer as written), not 3.0015 rounded.
		c.send(ch, caller, "BYE", t0.Add(5*time.Second+1500*time.Microsecond), "")
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"call_id,caller,callee,start,answer,end,duration,disposition,end_code,ended_by,transfer_target,auth_user,forwarded_from,attempts",
		`"id,0",alice,bob,2026-03-01T12:00:00.000Z,2026-03-01T12:00:02.000Z,2026-03-01T12:00:05.001Z,3.001,answered,,alice,,,,`,
		`"id,1",alice,bob,2026-03-01T12:00:00.000Z,2026-03-01T12:00:02.000Z,2026-03-01T12:00:05.001Z,3.001,answered,,alice,,,,`,
	}
	if got := readLines(t, cdrPath); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("CDR file:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRegister covers REGISTER and UNREGISTER, logged on the 2xx.
func TestRegister(t *testing.T) {
	tests := []struct {
		headers []string
		code    int
		want    string // "" for no line
	}{
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>", "Expires: 3600"}, code: 200, want: "REGISTER,alice"},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>"}, code: 200, want: "REGISTER,alice"},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>;expires=60", "Expires: 0"}, code: 200, want: "REGISTER,alice"},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>", "Expires: 0"}, code: 200, want: "UNREGISTER,alice"},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>;expires=0"}, code: 200, want: "UNREGISTER,alice"},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>;expires=0, <sip:alice@127.0.0.3:5060>"}, code: 200, want: "REGISTER,alice"},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>;expires=0, <sip:alice@127.0.0.3:5060>;expires=0"}, code: 200, want: "UNREGISTER,alice"},
		{headers: []string{"Contact: *", "Expires: 0"}, code: 200, want: "UNREGISTER,alice"},
		{headers: nil, code: 200},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>", "Expires: 3600"}, code: 423},
		{headers: []string{"Contact: <sip:alice@127.0.0.2:5060>", "Expires: 3600"}, code: 401},
	}
	for i, tc := range tests {
		events, _ := run(t, "", func(ch *chain) {
			c := newCall2(t, fmt.Sprintf("reg-%d", i), "alice", "alice")
			req := c.request(caller, "REGISTER", false, 1, "", tc.headers...)
			ch.request(t, req, t0)
			c.respond(ch, req, tc.code, t0, "", true)
		})
		got := strings.Join(fields(events), "\n")
		if got != tc.want {
			t.Errorf("test %d: log %q, want %q", i, got, tc.want)
		}
	}
}

// TestUnknownBye: a BYE of a call never seen is logged as such, and
// written to no record; malformed ones are ignored.
func TestUnknownBye(t *testing.T) {
	flow := func(ch *chain) {
		c := newCall2(t, "lost", "alice", "bob")
		c.send(ch, callee, "BYE", t0, "")
		ch.request(t, stagetest.Request(t, "BYE sip:x@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\nCSeq: 1 BYE\n\n"), t0)
		res := sip.NewResponse(200, "OK")
		ch.response(t, stagetest.Request(t, "INVITE sip:x@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\nCSeq: 1 INVITE\n\n"), res, t0)
	}
	events, cdrs := run(t, "", flow)
	if got := strings.Join(fields(events), "\n"); got != "BYE,bob,alice,Unknown call" {
		t.Errorf("log %q", got)
	}
	if len(cdrs) != 0 {
		t.Errorf("CDRs %q", cdrs)
	}
	events, _ = run(t, "seed_only = true", flow)
	if len(events) != 0 {
		t.Errorf("seed_only log %q", events)
	}
	events, _ = run(t, `format = "json"`, flow)
	if len(events) != 1 || !strings.Contains(events[0], `"event":"BYE","call_id":"lost","caller":"bob","callee":"alice","by":"bob","detail":"Unknown call"}`) {
		t.Errorf("json log %q", events)
	}
}

// TestLateMessages: what comes after a call ended (its BYE again, the
// other party's crossing BYE, a retransmitted 2xx or INVITE) changes
// nothing until the call is forgotten, linger later, whether the caller
// gave a tag or not (RFC 2543), and is not taken for another call that
// shares the Call-ID; a BYE after the linger is one of an unknown call.
func TestLateMessages(t *testing.T) {
	tests := []struct {
		name string
		flow func(ch *chain, tr *tracker)
		want []string
	}{
		{"late messages", func(ch *chain, tr *tracker) {
			c := newCall2(t, "late", "alice", "bob")
			inv := c.invite(ch, t0, "")
			c.respond(ch, inv, 200, t0.Add(time.Second), "", false)
			c.ack(ch, caller, inv, t0.Add(time.Second), "")
			c.send(ch, caller, "BYE", t0.Add(5*time.Second), "")
			tr.mu.Lock()
			calls, ended := len(tr.calls), tr.ended.len()
			tr.mu.Unlock()
			if calls != 0 || ended != 1 {
				t.Errorf("after the BYE: %d calls, %d ended; want 0, 1", calls, ended)
			}
			c.send(ch, caller, "BYE", t0.Add(6*time.Second), "")
			c.send(ch, callee, "BYE", t0.Add(6*time.Second), "")
			c.respond(ch, inv, 200, t0.Add(6*time.Second), "", false)
			ch.request(t, inv, t0.Add(6*time.Second))
			tr.sweep(time.Now().Add(linger + time.Second))
			c.send(ch, callee, "BYE", t0.Add(40*time.Second), "")
		}, []string{"INVITE,alice,bob", "CALL STARTED,alice,bob", "CALL ENDED,alice,bob,Call duration: 4.00 seconds", "BYE,bob,alice,Unknown call"}},
		{"a caller with no tag", func(ch *chain, tr *tracker) {
			c := newCall2(t, "rfc2543", "alice", "bob")
			c.tags[caller] = ""
			inv := c.invite(ch, t0, "")
			c.respond(ch, inv, 200, t0.Add(time.Second), "", false)
			c.send(ch, caller, "BYE", t0.Add(5*time.Second), "")
			c.send(ch, caller, "BYE", t0.Add(6*time.Second), "")
			c.send(ch, callee, "BYE", t0.Add(6*time.Second), "")
			c.respond(ch, inv, 200, t0.Add(6*time.Second), "", false)
			ch.request(t, inv, t0.Add(6*time.Second))
		}, []string{"INVITE,alice,bob", "CALL STARTED,alice,bob", "CALL ENDED,alice,bob,Call duration: 4.00 seconds"}},
		{"another call of the Call-ID", func(ch *chain, tr *tracker) {
			first := newCall2(t, "shared", "alice", "bob")
			first.answered(ch, t0)
			first.send(ch, caller, "BYE", t0.Add(5*time.Second), "")
			// A call from bob, whose tag is the one the first call's
			// BYE is addressed to, rings.
			second := newCall2(t, "shared", "bob", "carol")
			inv := second.invite(ch, t0.Add(6*time.Second), "")
			first.send(ch, caller, "BYE", t0.Add(7*time.Second), "")
			second.respond(ch, inv, 487, t0.Add(8*time.Second), "", false)
		}, []string{"INVITE,alice,bob", "RINGING,alice,bob", "CALL STARTED,alice,bob", "CALL ENDED,alice,bob,Call duration: 3.00 seconds",
			"INVITE,bob,carol", "487,bob,carol,Call hung up by bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, cd := tempPaths(t)
			ch := mustChain(t, fmt.Sprintf("path = %q\ncdr_path = %q", ev, cd), nil)
			v, _ := ch.Services.Shared.Load("calllog.tracker:" + ev)
			tc.flow(ch, v.(*tracker))
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			if got := fields(readLines(t, ev)); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestRetriedInvite: an INVITE sent again after 407 is the same call.
func TestRetriedInvite(t *testing.T) {
	events, cdrs := run(t, "", func(ch *chain) {
		c := newCall2(t, "auth", "alice", "bob")
		inv := c.invite(ch, t0, "")
		c.respond(ch, inv, 407, t0, "", true)
		c.cseq[caller]++
		inv = c.invite(ch, t0.Add(time.Second), "")
		c.respond(ch, inv, 200, t0.Add(2*time.Second), "", false)
		c.send(ch, caller, "BYE", t0.Add(4*time.Second), "")
	})
	want := []string{"INVITE,alice,bob", "CALL STARTED,alice,bob", "CALL ENDED,alice,bob,Call duration: 2.00 seconds"}
	if got := fields(events); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(cdrs) != 2 || !strings.HasSuffix(cdrs[1], ",2.000,answered,,alice,,,,") {
		t.Errorf("CDRs %q", cdrs)
	}

	// A caller that does not send the INVITE again: the call is recorded
	// as failed once it has waited long enough.
	events, cdrs = run(t, `time_zone = "UTC"`, func(ch *chain) {
		c := newCall2(t, "noauth", "alice", "bob")
		inv := c.invite(ch, t0, "")
		c.respond(ch, inv, 407, t0.Add(time.Second), "", true)
		ch.Services.Shared.Range(func(_ string, v any) {
			if tr, ok := v.(*tracker); ok {
				tr.sweep(time.Now().Add(10 * time.Second))
				if tr.Len() != 1 {
					t.Errorf("the call was dropped before lingering")
				}
				tr.sweep(time.Now().Add(time.Minute))
			}
		})
	})
	if got := fields(events); strings.Join(got, "\n") != "INVITE,alice,bob" {
		t.Errorf("log %q", got)
	}
	if w := "noauth,alice,bob,2026-03-01T12:00:00.000Z,,2026-03-01T12:00:01.000Z,0.000,failed,407,,,,,"; len(cdrs) != 2 || cdrs[1] != w {
		t.Errorf("CDRs %q, want %q", cdrs, w)
	}
}

// TestTimeZone: the seed's local time and the json time follow time_zone.
func TestTimeZone(t *testing.T) {
	tests := []struct {
		keys string
		want string
	}{
		{`time_zone = "UTC"`, "01.03.2026 12:00:00,INVITE,alice,bob"},
		{`time_zone = "Europe/Ljubljana"`, "01.03.2026 13:00:00,INVITE,alice,bob"},
		{`time_zone = "America/New_York"`, "01.03.2026 07:00:00,INVITE,alice,bob"},
		{"time_zone = \"Asia/Kolkata\"\nformat = \"json\"", `{"time":"2026-03-01T17:30:00.250+05:30","event":"INVITE","call_id":"tz","caller":"alice","callee":"bob"}`},
		{"time_zone = \"UTC\"\nformat = \"json\"", `{"time":"2026-03-01T12:00:00.250Z","event":"INVITE","call_id":"tz","caller":"alice","callee":"bob"}`},
	}
	for i, tc := range tests {
		events, _ := run(t, tc.keys, func(ch *chain) {
			newCall2(t, "tz", "alice", "bob").invite(ch, t0.Add(250*time.Millisecond), "")
		})
		got := events[len(events)-1]
		if got != tc.want {
			t.Errorf("test %d: %q, want %q", i, got, tc.want)
		}
		if strings.Contains(tc.keys, "json") {
			if len(events) != 1 {
				t.Errorf("test %d: json lines: %q", i, events)
			}
		} else if !strings.HasPrefix(events[0], "===== Starting server (") || len(events) != 2 {
			t.Errorf("test %d: header: %q", i, events)
		}
	}
}

// TestReload: a call answered on one pipeline and ended on the next, built
// from another config over the same services, is logged and recorded
// whole; the header is written once per process.
func TestReload(t *testing.T) {
	ev, cd := tempPaths(t)
	svc := &pipeline.Services{}
	p1 := mustChain(t, fmt.Sprintf("path = %q\ncdr_path = %q", ev, cd), svc)
	c := newCall2(t, "reload", "alice", "bob")
	inv := c.invite(p1, t0, sdp("", "127.0.0.2", -1))
	c.respond(p1, inv, 200, t0.Add(1500*time.Millisecond), sdp("", "127.0.0.3", -1), false)

	p2 := p1.reload(t, fmt.Sprintf("path = %q\ncdr_path = %q\ntime_zone = \"UTC\"\nmax_calls = 10\ncdr_format = \"csv\"", ev, cd))
	// The old pipeline is retired once its transactions are over.
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	c.ack(p2, caller, inv, t0.Add(1600*time.Millisecond), "")
	c.send(p2, callee, "BYE", t0.Add(31*time.Second+789*time.Millisecond), "")
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	_ = svc.Close()

	lines := readLines(t, ev)
	want := []string{"INVITE,alice,bob", "CALL STARTED,alice,bob", "CALL ENDED,bob,alice,Call duration: 30.29 seconds"}
	if got := fields(lines); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := strings.Count(strings.Join(lines, "\n"), "Starting server"); n != 1 {
		t.Errorf("%d header lines, want 1", n)
	}
	cdrs := readLines(t, cd)
	if w := "reload,alice,bob,2026-03-01T12:00:00.000Z,2026-03-01T12:00:01.500Z,2026-03-01T12:00:31.789Z,30.289,answered,,bob,,,,"; len(cdrs) != 2 || cdrs[1] != w {
		t.Errorf("CDRs %q, want %q", cdrs, w)
	}
}

// TestReopen: after logrotate renamed the files, Reopen (which main calls
// on SIGHUP through the Reopener interface) sends new lines to new files
// at the paths; the CSV header starts the new records file.
func TestReopen(t *testing.T) {
	ev, cd := tempPaths(t)
	ch := mustChain(t, fmt.Sprintf("path = %q\ncdr_path = %q", ev, cd), nil)
	c1 := newCall2(t, "one", "alice", "bob")
	c1.answered(ch, t0)
	c1.send(ch, caller, "BYE", t0.Add(5*time.Second), "")
	c2 := newCall2(t, "two", "alice", "carol")
	c2.answered(ch, t0.Add(time.Second))
	for _, f := range []string{ev, cd} {
		if err := os.Rename(f, f+".1"); err != nil {
			t.Fatal(err)
		}
	}
	reopened := 0
	ch.Services.Shared.Range(func(key string, v any) {
		if r, ok := v.(Reopener); ok {
			if err := r.Reopen(); err != nil {
				t.Errorf("%s: %v", key, err)
			}
			reopened++
		}
	})
	if reopened != 2 {
		t.Errorf("%d services reopened, want 2", reopened)
	}
	c2.send(ch, callee, "BYE", t0.Add(9*time.Second), "")
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}

	if got, want := fields(readLines(t, ev+".1")), []string{
		"INVITE,alice,bob", "RINGING,alice,bob", "CALL STARTED,alice,bob", "CALL ENDED,alice,bob,Call duration: 3.00 seconds",
		"INVITE,alice,carol", "RINGING,alice,carol", "CALL STARTED,alice,carol",
	}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rotated log:\n%s", strings.Join(got, "\n"))
	}
	if got := readLines(t, ev); len(got) != 1 || !strings.HasSuffix(got[0], ",CALL ENDED,carol,alice,Call duration: 6.00 seconds") {
		t.Errorf("new log: %q", got)
	}
	if got := readLines(t, cd+".1"); len(got) != 2 || !strings.HasPrefix(got[1], "one,") {
		t.Errorf("rotated CDRs: %q", got)
	}
	if got := readLines(t, cd); len(got) != 2 || got[0] != strings.TrimSuffix(csvHeader, "\n") || !strings.HasPrefix(got[1], "two,") {
		t.Errorf("new CDRs: %q", got)
	}
}

// TestFlushTimer: lines reach the file within the flush delay, without a
// Close.
func TestFlushTimer(t *testing.T) {
	ev, _ := tempPaths(t)
	ch := mustChain(t, fmt.Sprintf("path = %q", ev), nil)
	newCall2(t, "flush", "alice", "bob").invite(ch, t0, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(ev)
		if strings.Contains(string(data), "INVITE,alice,bob") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the line did not reach the file: %q", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLimits: calls that outlive max_call, or the oldest past max_calls,
// are dropped and recorded as expired; ended calls are forgotten after
// lingering.
func TestLimits(t *testing.T) {
	ev, cd := tempPaths(t)
	ch := mustChain(t, fmt.Sprintf("path = %q\ncdr_path = %q\nmax_calls = 2\nmax_call = \"1h\"\ntime_zone = \"UTC\"", ev, cd), nil)
	v, _ := ch.Services.Shared.Load("calllog.tracker:" + ev)
	tr := v.(*tracker)
	a := newCall2(t, "a", "alice", "bob")
	a.answered(ch, t0)
	b := newCall2(t, "b", "alice", "carol")
	b.invite(ch, t0.Add(time.Second), "")
	// A third call drops the oldest, a.
	c := newCall2(t, "c", "alice", "dave")
	c.answered(ch, t0.Add(2*time.Second))
	if n := tr.Len(); n != 2 {
		t.Errorf("%d calls tracked, want 2", n)
	}
	// a's BYE is now that of an unknown call.
	a.send(ch, caller, "BYE", t0.Add(3*time.Second), "")
	c.send(ch, callee, "BYE", t0.Add(6*time.Second), "")
	// c ended and lingers; b is dropped after max_call.
	tr.sweep(time.Now().Add(2 * time.Hour))
	if n := tr.Len(); n != 0 {
		t.Errorf("%d calls tracked after the sweep, want 0", n)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range readLines(t, cd)[1:] {
		f := strings.Split(l, ",")
		end := f[5]
		if f[0] == "b" {
			end = "" // the sweep's clock
		}
		rows = append(rows, f[0]+","+f[4]+","+end+","+f[6]+","+f[7])
	}
	want := []string{
		// Dropped when c started: its end is c's INVITE.
		"a,2026-03-01T12:00:02.000Z,2026-03-01T12:00:02.000Z,0.000,expired",
		"c,2026-03-01T12:00:04.000Z,2026-03-01T12:00:06.000Z,2.000,answered",
		"b,,,0.000,expired",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("CDRs:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	if got := fields(readLines(t, ev)); !strings.Contains(strings.Join(got, "\n"), "BYE,alice,bob,Unknown call") {
		t.Errorf("log:\n%s", strings.Join(got, "\n"))
	}
}

// TestConcurrency runs many calls at once, with reopens and a reload in
// between (run it with -race): every call gets its lines and its record.
func TestConcurrency(t *testing.T) {
	ev, cd := tempPaths(t)
	svc := &pipeline.Services{}
	keys := fmt.Sprintf("path = %q\ncdr_path = %q", ev, cd)
	// The real clock: a test clock is not for goroutines.
	p1 := &chain{Harness: stagetest.Stage(t, "calllog", keys, stagetest.WithServices(svc), stagetest.WithSource(phone))}
	p2 := &chain{Harness: stagetest.Stage(t, "calllog", keys, stagetest.WithServices(svc), stagetest.WithSource(phone))}
	const calls = 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			svc.Shared.Range(func(_ string, v any) {
				if r, ok := v.(Reopener); ok {
					_ = r.Reopen()
				}
			})
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var real time.Time // leaves the clock, the real one, alone
			ch := p1
			c := newCall2(t, fmt.Sprintf("conc-%d", i), fmt.Sprintf("u%d", i), fmt.Sprintf("v%d", i))
			inv := c.invite(ch, time.Now(), sdp("", "127.0.0.2", -1))
			c.respond(ch, inv, 180, real, "", false)
			c.respond(ch, inv, 200, real, sdp("", "127.0.0.3", -1), false)
			ch = p2 // the reload
			c.ack(ch, caller, inv, time.Now(), "")
			re := c.send(ch, caller, "INVITE", time.Now(), sdp("sendonly", "127.0.0.2", -1))
			c.respond(ch, re, 200, real, sdp("recvonly", "127.0.0.3", -1), false)
			c.ack(ch, caller, re, time.Now(), "")
			c.send(ch, i%2, "BYE", time.Now(), "")
		}(i)
	}
	wg.Wait()
	close(stop)
	_ = p1.Close()
	_ = p2.Close()
	_ = svc.Close()
	lines := fields(readLines(t, ev))
	if len(lines) != calls*6 {
		t.Errorf("%d lines, want %d", len(lines), calls*6)
	}
	count := map[string]int{}
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ",")
		count[name]++
	}
	for _, name := range []string{"INVITE", "RINGING", "CALL STARTED", "HOLD", "SWITCH ACK", "CALL ENDED"} {
		if count[name] != calls {
			t.Errorf("%d %s lines, want %d", count[name], name, calls)
		}
	}
	if cdrs := readLines(t, cd); len(cdrs) != calls+1 {
		t.Errorf("%d CDR lines, want %d", len(cdrs), calls+1)
	}
}

// TestDialogs: calls are told apart by Call-ID and dialog, not by the pair
// of users.
func TestDialogs(t *testing.T) {
	events, cdrs := run(t, `time_zone = "UTC"`, func(ch *chain) {
		// Two calls from alice to bob at once (call waiting).
		c1 := newCall2(t, "first", "alice", "bob")
		c1.answered(ch, t0)
		c2 := newCall2(t, "second", "alice", "bob")
		c2.answered(ch, t0.Add(time.Second))
		// A BYE in another dialog of the first call (a second 2xx of a
		// forked INVITE) is not the call's.
		other := *c1
		other.tags[callee] = "tag-bob-other-device"
		other.send(ch, caller, "BYE", t0.Add(4*time.Second), "")
		c2.send(ch, callee, "BYE", t0.Add(5*time.Second), "")
		c1.send(ch, caller, "BYE", t0.Add(8*time.Second), "")
		// An INVITE answered before this stage (location's 404) is seen
		// through its answer.
		c3 := newCall2(t, "third", "alice", "nobody")
		inv := c3.request(caller, "INVITE", false, 1, "")
		c3.respond(ch, inv, 404, t0.Add(9*time.Second), "", true)
	})
	want := []string{
		"INVITE,alice,bob", "RINGING,alice,bob", "CALL STARTED,alice,bob",
		"INVITE,alice,bob", "RINGING,alice,bob", "CALL STARTED,alice,bob",
		"CALL ENDED,bob,alice,Call duration: 2.00 seconds",
		"CALL ENDED,alice,bob,Call duration: 6.00 seconds",
		"INVITE,alice,nobody", "404,alice,nobody,Call failed: Not Found",
	}
	if got := fields(events); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantCDR := []string{
		"second,alice,bob,2026-03-01T12:00:01.000Z,2026-03-01T12:00:03.000Z,2026-03-01T12:00:05.000Z,2.000,answered,,bob,,,,",
		"first,alice,bob,2026-03-01T12:00:00.000Z,2026-03-01T12:00:02.000Z,2026-03-01T12:00:08.000Z,6.000,answered,,alice,,,,",
		"third,alice,nobody,2026-03-01T12:00:09.000Z,,2026-03-01T12:00:09.000Z,0.000,failed,404,,,,,",
	}
	if len(cdrs) < 1 || strings.Join(cdrs[1:], "\n") != strings.Join(wantCDR, "\n") {
		t.Errorf("CDRs:\n%s\nwant:\n%s", strings.Join(cdrs, "\n"), strings.Join(wantCDR, "\n"))
	}
}

// TestNoEventsNoHeader: a pipeline built and retired without a call (as
// `switchboard validate` does) leaves the files empty.
func TestNoEventsNoHeader(t *testing.T) {
	events, cdrs := run(t, "", func(*chain) {})
	if len(events) != 0 || len(cdrs) != 0 {
		t.Errorf("files written: %q, %q", events, cdrs)
	}
}
