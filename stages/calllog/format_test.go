package calllog

import (
	"github.com/switchboard-sip/switchboard/pipeline"

	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The formats as the stage wrote them before its append-style writers,
// with strings.Replacer, fmt, encoding/csv and encoding/json: the writers
// must write the same bytes.

// referenceSeedLine is the seed line of e, its fields put together first.
func referenceSeedLine(e *event, loc *time.Location, seedOnly bool) []byte {
	var f []string
	k := e.kind
	if seedOnly {
		switch k {
		case evHold, evResume, evVideoOn, evVideoOff:
			k = evSwitchInvite
		}
	}
	text, name := e.detail()
	detail := text + name
	switch k {
	case evRegister, evUnregister:
		f = []string{names[k], e.user}
	case evInvite, evRinging, evStarted:
		f = []string{names[k], e.caller, e.callee}
	case evCancelled, evRejected, evNoAnswer, evFailed:
		f = []string{strconv.Itoa(e.code), e.caller, e.callee, detail}
	case evSwitchInvite, evHold, evResume, evVideoOn, evVideoOff, evSwitchAck:
		f = []string{names[k], e.by, e.other}
	case evTransfer:
		f = []string{names[k], e.by, e.other, "Transfer to " + e.target}
	case evEnded:
		cs := (e.duration.Round(time.Millisecond).Milliseconds() + 5) / 10
		f = []string{names[k], e.by, e.other, fmt.Sprintf("Call duration: %d.%02d seconds", cs/100, cs%100)}
	case evUnknownBye:
		f = []string{names[k], e.caller, e.callee, detail}
	}
	escape := strings.NewReplacer(",", "%2C", "\r", "%0D", "\n", "%0A").Replace
	var b strings.Builder
	b.WriteString(e.at.In(loc).Format(seedTime))
	for _, s := range f {
		b.WriteByte(',')
		b.WriteString(escape(s))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// referenceJSONLine is e marshalled by encoding/json.
func referenceJSONLine(e *event, loc *time.Location) []byte {
	text, name := e.detail()
	j := struct {
		Time       string `json:"time"`
		Event      string `json:"event"`
		CallID     string `json:"call_id,omitempty"`
		User       string `json:"user,omitempty"`
		Caller     string `json:"caller,omitempty"`
		Callee     string `json:"callee,omitempty"`
		By         string `json:"by,omitempty"`
		Code       int    `json:"code,omitempty"`
		DurationMS *int64 `json:"duration_ms,omitempty"`
		Target     string `json:"target,omitempty"`
		Detail     string `json:"detail,omitempty"`
	}{
		Time:   e.at.In(loc).Format(jsonTime),
		Event:  names[e.kind],
		CallID: e.callID,
		User:   e.user,
		Caller: e.caller,
		Callee: e.callee,
		By:     e.by,
		Code:   e.code,
		Target: e.target,
		Detail: text + name,
	}
	if e.kind == evEnded {
		ms := e.duration.Round(time.Millisecond).Milliseconds()
		j.DurationMS = &ms
	}
	b, _ := json.Marshal(j)
	return append(b, '\n')
}

// referenceTime is a time of a record as a string, "" for none.
func referenceTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(jsonTime)
}

// referenceCSVLine is r written by encoding/csv.
func referenceCSVLine(r *record, loc *time.Location) []byte {
	code := ""
	if r.code != 0 {
		code = strconv.Itoa(r.code)
	}
	ms := r.duration().Round(time.Millisecond).Milliseconds()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{
		r.callID, r.caller, r.callee,
		referenceTime(r.start, loc), referenceTime(r.answer, loc), referenceTime(r.end, loc),
		fmt.Sprintf("%d.%03d", ms/1000, ms%1000),
		r.disposition, code, r.endedBy, r.transfer, r.authUser,
		r.attempts.ForwardedFrom(), r.attempts.String(),
	})
	w.Flush()
	return buf.Bytes()
}

// referenceJSONRecordLine is r marshalled by encoding/json.
func referenceJSONRecordLine(r *record, loc *time.Location) []byte {
	tries, forwards := r.attempts.Copy()
	b, _ := json.Marshal(struct {
		CallID         string               `json:"call_id"`
		Caller         string               `json:"caller"`
		Callee         string               `json:"callee"`
		Start          string               `json:"start"`
		Answer         string               `json:"answer,omitempty"`
		End            string               `json:"end"`
		Duration       float64              `json:"duration"`
		Disposition    string               `json:"disposition"`
		EndCode        int                  `json:"end_code,omitempty"`
		EndedBy        string               `json:"ended_by,omitempty"`
		TransferTarget string               `json:"transfer_target,omitempty"`
		AuthUser       string               `json:"auth_user,omitempty"`
		ForwardedFrom  string               `json:"forwarded_from,omitempty"`
		Forwards       []pipeline.Diversion `json:"forwards,omitempty"`
		Attempts       []pipeline.Attempt   `json:"attempts,omitempty"`
	}{
		CallID:         r.callID,
		Caller:         r.caller,
		Callee:         r.callee,
		Start:          referenceTime(r.start, loc),
		Answer:         referenceTime(r.answer, loc),
		End:            referenceTime(r.end, loc),
		Duration:       seconds(r.duration()),
		Disposition:    r.disposition,
		EndCode:        r.code,
		EndedBy:        r.endedBy,
		TransferTarget: r.transfer,
		AuthUser:       r.authUser,
		ForwardedFrom:  r.attempts.ForwardedFrom(),
		Forwards:       forwards,
		Attempts:       tries,
	})
	return append(b, '\n')
}

// trickyText are field values that the formats escape or quote.
var trickyText = []string{
	"", "alice", "al,ice", `"`, `b"ob"`, `""`, " lead", "trail ", "\tx", "\u00a0nbsp", "\u0085nel", "\u2003em",
	"x\ny", "x\r\ny", "\r", "\n", `\.`, `\.x`, `\`, "<&>", "\u2028\u2029", "é日本", "\xff\xfe", "a\x00b\x1f\x7f",
	"\b\f\t", "\xe2\x80", "Call failed: x", "%2C",
}

// TestAppendCSVField compares appendCSVField with encoding/csv on fields
// that are quoted or look as if they would be.
func TestAppendCSVField(t *testing.T) {
	for i, s := range trickyText {
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		_ = w.Write([]string{s})
		w.Flush()
		if got := append(appendCSVField(nil, s), '\n'); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("test %d: %q: %q, encoding/csv %q", i, s, got, want.Bytes())
		}
	}
}

// TestAppendDecimal checks the durations' decimals against fmt.
func TestAppendDecimal(t *testing.T) {
	for i, n := range []int64{0, 1, 9, 10, 99, 100, 101, 999, 1000, 1005, 12345, 60345, math.MaxInt64} {
		if got, want := string(appendDecimal(nil, n, 2)), fmt.Sprintf("%d.%02d", n/100, n%100); got != want {
			t.Errorf("test %d: %d with 2 digits: %s, want %s", i, n, got, want)
		}
		if got, want := string(appendDecimal(nil, n, 3)), fmt.Sprintf("%d.%03d", n/1000, n%1000); got != want {
			t.Errorf("test %d: %d with 3 digits: %s, want %s", i, n, got, want)
		}
	}
}

// zones are the time zones of the format tests: whole and odd offsets.
var zones = func() []*time.Location {
	out := []*time.Location{time.UTC, time.FixedZone("", -(3*3600 + 30*60)), time.FixedZone("", 5*3600+45*60), time.FixedZone("", 37)}
	for _, name := range []string{"Europe/Ljubljana", "America/St_Johns"} {
		if loc, err := time.LoadLocation(name); err == nil {
			out = append(out, loc)
		}
	}
	return out
}()

// FuzzEventLines writes events of every kind with any text in the seed
// and json formats, and compares them with referenceSeedLine and
// referenceJSONLine.
func FuzzEventLines(f *testing.F) {
	for i, s := range trickyText {
		f.Add(uint8(i), uint8(i), int64(i)*1e17+int64(i)*123456789, uint64(i)*7654321, i*101, s, trickyText[(i+1)%len(trickyText)], s+"x")
	}
	f.Fuzz(func(t *testing.T, k, zone uint8, at int64, duration uint64, code int, a, b, c string) {
		e := event{
			at: time.Unix(0, at), kind: kind(k) % (evUnknownBye + 1), callID: c, user: a,
			caller: a, callee: b, by: b, other: a, code: code, reason: c,
			duration: time.Duration(duration & math.MaxInt64), target: c,
		}
		loc := zones[int(zone)%len(zones)]
		for _, seedOnly := range []bool{false, true} {
			if got, want := appendSeedLine(nil, &e, loc, seedOnly), referenceSeedLine(&e, loc, seedOnly); !bytes.Equal(got, want) {
				t.Fatalf("seed line (seed_only %v):\n%q\nwant\n%q", seedOnly, got, want)
			}
		}
		if got, want := appendJSONLine([]byte("in front"), &e, loc), referenceJSONLine(&e, loc); !bytes.Equal(got[len("in front"):], want) {
			t.Fatalf("json line:\n%q\nwant\n%q", got, want)
		}
	})
}

// FuzzRecordLines writes records with any text and times in the csv and
// json formats, and compares them with referenceCSVLine (encoding/csv) and
// referenceJSONRecordLine (encoding/json).
func FuzzRecordLines(f *testing.F) {
	for i, s := range trickyText {
		f.Add(uint8(i), uint8(i), int64(i)*1e17+int64(i)*123456789, int64(i)*7654321-1e7, int64(i)*1e9+1500, i*101, s, trickyText[(i+1)%len(trickyText)], trickyText[(i+2)%len(trickyText)])
	}
	dispositions := []string{dispAnswered, dispCancelled, dispRejected, dispBusy, dispNoAnswer, dispFailed, dispExpired}
	f.Fuzz(func(t *testing.T, disp, zone uint8, start, answer, end int64, code int, a, b, c string) {
		r := record{
			callID: a, caller: b, callee: c, start: time.Unix(0, start), end: time.Unix(0, start).Add(time.Duration(end)),
			disposition: dispositions[int(disp)%len(dispositions)], code: code, endedBy: b, transfer: c, authUser: a,
		}
		if answer >= 0 {
			r.answer = time.Unix(0, start).Add(time.Duration(answer))
		}
		if disp&0x80 != 0 {
			r.start = time.Time{}
		}
		if disp&0x40 != 0 {
			// A forwarded call: a branch to a, forwarded from b to c.
			r.attempts = &pipeline.Attempts{}
			r.attempts.Ended(r.attempts.Sent(a, c), code)
			r.attempts.Forward("busy", b, c)
			r.attempts.Sent(c, "")
		}
		loc := zones[int(zone)%len(zones)]
		if got, want := appendCSVLine(nil, &r, loc), referenceCSVLine(&r, loc); !bytes.Equal(got, want) {
			t.Fatalf("csv line:\n%q\nwant\n%q", got, want)
		}
		if got, want := appendJSONRecordLine(nil, &r, loc), referenceJSONRecordLine(&r, loc); !bytes.Equal(got, want) {
			t.Fatalf("json record:\n%q\nwant\n%q", got, want)
		}
	})
}
