package calllog

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// kind is the type of an event of the call log.
type kind int

const (
	evRegister kind = iota
	evUnregister
	evInvite
	evRinging
	evStarted
	evCancelled
	evRejected
	evNoAnswer
	evFailed
	evSwitchInvite
	evHold
	evResume
	evVideoOn
	evVideoOff
	evSwitchAck
	evTransfer
	evEnded
	evUnknownBye
)

// names are the events' names in the json format, and in the seed format
// where the line does not start with a SIP code.
var names = map[kind]string{
	evRegister:     "REGISTER",
	evUnregister:   "UNREGISTER",
	evInvite:       "INVITE",
	evRinging:      "RINGING",
	evStarted:      "CALL STARTED",
	evCancelled:    "CALL CANCELLED",
	evRejected:     "CALL REJECTED",
	evNoAnswer:     "NO ANSWER",
	evFailed:       "CALL FAILED",
	evSwitchInvite: "SWITCH INVITE",
	evHold:         "HOLD",
	evResume:       "RESUME",
	evVideoOn:      "VIDEO ON",
	evVideoOff:     "VIDEO OFF",
	evSwitchAck:    "SWITCH ACK",
	evTransfer:     "TRANSFER",
	evEnded:        "CALL ENDED",
	evUnknownBye:   "BYE",
}

// event is one line of the call log.
type event struct {
	at     time.Time
	kind   kind
	callID string
	// user is the registered user, for REGISTER and UNREGISTER.
	user string
	// caller and callee are the call's parties, from the initial INVITE;
	// for a BYE of an unknown call, its From and To users.
	caller, callee string
	// by is who did it: the sender of an in-dialog request, the party that
	// ended a call; other is the other party.
	by, other string
	// code and reason are the final response of an unanswered call.
	code   int
	reason string
	// duration is from answer to BYE.
	duration time.Duration
	// target is the user a REFER transfers to.
	target string
}

// original reports whether the event is one the seed's logger wrote, as
// the seed format with seed_only writes it.
func (e *event) original() bool {
	switch e.kind {
	case evRegister, evInvite, evStarted, evEnded, evCancelled,
		evSwitchInvite, evHold, evResume, evVideoOn, evVideoOff, evSwitchAck:
		return true
	case evRejected:
		return e.code == 603
	}
	return false
}

// detail is the free text of an event: the seed format's last field and
// the json format's "detail".
func (e *event) detail() string {
	switch e.kind {
	case evCancelled:
		return "Call hung up by " + e.by
	case evRejected:
		if e.code == 603 {
			return "Call hung up by " + e.by
		}
		return "Call rejected by " + e.by
	case evNoAnswer:
		return "No answer"
	case evFailed:
		if e.reason == "" {
			return "Call failed"
		}
		return "Call failed: " + e.reason
	case evUnknownBye:
		return "Unknown call"
	}
	return ""
}

// Time layouts.
const (
	seedTime = "02.01.2006 15:04:05"
	jsonTime = "2006-01-02T15:04:05.000Z07:00"
)

// seedLine renders e as the seed's logger did: the local time and the
// fields, comma-separated, without spaces around the commas. With
// seedOnly, a classified re-INVITE is a SWITCH INVITE, as it was.
func seedLine(e *event, loc *time.Location, seedOnly bool) []byte {
	var f []string
	k := e.kind
	if seedOnly {
		switch k {
		case evHold, evResume, evVideoOn, evVideoOff:
			k = evSwitchInvite
		}
	}
	switch k {
	case evRegister, evUnregister:
		f = []string{names[k], e.user}
	case evInvite, evRinging, evStarted:
		f = []string{names[k], e.caller, e.callee}
	case evCancelled, evRejected, evNoAnswer, evFailed:
		f = []string{strconv.Itoa(e.code), e.caller, e.callee, e.detail()}
	case evSwitchInvite, evHold, evResume, evVideoOn, evVideoOff, evSwitchAck:
		f = []string{names[k], e.by, e.other}
	case evTransfer:
		f = []string{names[k], e.by, e.other, "Transfer to " + e.target}
	case evEnded:
		f = []string{names[k], e.by, e.other, "Call duration: " + centiseconds(e.duration) + " seconds"}
	case evUnknownBye:
		f = []string{names[k], e.caller, e.callee, e.detail()}
	}
	var b strings.Builder
	b.WriteString(e.at.In(loc).Format(seedTime))
	for _, s := range f {
		b.WriteByte(',')
		b.WriteString(seedField(s))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// seedField keeps a field from breaking the line into more fields or
// lines.
var seedField = strings.NewReplacer(",", "%2C", "\r", "%0D", "\n", "%0A").Replace

// seedHeader is the line the seed's logger wrote when the server started.
func seedHeader(at time.Time, loc *time.Location) string {
	return "===== Starting server (" + at.In(loc).Format(seedTime) + ") =====\n"
}

// jsonEvent is an event in the json format.
type jsonEvent struct {
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
}

// jsonLine renders e as one JSON object on a line.
func jsonLine(e *event, loc *time.Location) []byte {
	j := jsonEvent{
		Time:   e.at.In(loc).Format(jsonTime),
		Event:  names[e.kind],
		CallID: e.callID,
		User:   e.user,
		Caller: e.caller,
		Callee: e.callee,
		By:     e.by,
		Code:   e.code,
		Target: e.target,
		Detail: e.detail(),
	}
	if e.kind == evEnded {
		ms := e.duration.Round(time.Millisecond).Milliseconds()
		j.DurationMS = &ms
	}
	b, _ := json.Marshal(j)
	return append(b, '\n')
}

// seconds returns d in seconds, rounded to the millisecond.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond).Milliseconds()) / 1000
}

// centiseconds formats d in seconds with two decimals, rounded half up
// from the millisecond: 17233ms is "17.23", 60345ms "60.35".
func centiseconds(d time.Duration) string {
	cs := (d.Round(time.Millisecond).Milliseconds() + 5) / 10
	return fmt.Sprintf("%d.%02d", cs/100, cs%100)
}

// milliseconds formats d in seconds with three decimals.
func milliseconds(d time.Duration) string {
	ms := d.Round(time.Millisecond).Milliseconds()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// The dispositions of a finished call.
const (
	dispAnswered  = "answered"
	dispCancelled = "cancelled"
	dispRejected  = "rejected"
	dispBusy      = "busy"
	dispNoAnswer  = "no_answer"
	dispFailed    = "failed"
	// dispExpired is a call the tracker dropped before it ended: it outlived
	// max_call (a BYE that never came) or was the oldest past max_calls.
	dispExpired = "expired"
)

// record is one call detail record.
type record struct {
	callID         string
	caller, callee string
	start, answer  time.Time
	end            time.Time
	disposition    string
	code           int
	endedBy        string
	transfer       string
}

// duration is from answer to end, 0 for a call that was not answered or
// whose end is not known (expired). It is the difference of the two times
// as written (to the millisecond), so that a reader who subtracts them
// finds the same figure.
func (r *record) duration() time.Duration {
	if r.disposition != dispAnswered || r.answer.IsZero() || r.end.Before(r.answer) {
		return 0
	}
	return r.end.Truncate(time.Millisecond).Sub(r.answer.Truncate(time.Millisecond))
}

// csvColumns is the header line of a CSV file of records.
var csvColumns = []string{"call_id", "caller", "callee", "start", "answer", "end", "duration", "disposition", "end_code", "ended_by", "transfer_target"}

// csvHeader is csvColumns as a line.
var csvHeader = strings.Join(csvColumns, ",") + "\n"

// timeField formats a time of a record, "" for none.
func timeField(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(jsonTime)
}

// csvLine renders r as a CSV line.
func csvLine(r *record, loc *time.Location) []byte {
	code := ""
	if r.code != 0 {
		code = strconv.Itoa(r.code)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{
		r.callID, r.caller, r.callee,
		timeField(r.start, loc), timeField(r.answer, loc), timeField(r.end, loc),
		milliseconds(r.duration()),
		r.disposition, code, r.endedBy, r.transfer,
	})
	w.Flush()
	return buf.Bytes()
}

// jsonRecord is a record in the json format.
type jsonRecord struct {
	CallID         string  `json:"call_id"`
	Caller         string  `json:"caller"`
	Callee         string  `json:"callee"`
	Start          string  `json:"start"`
	Answer         string  `json:"answer,omitempty"`
	End            string  `json:"end"`
	Duration       float64 `json:"duration"`
	Disposition    string  `json:"disposition"`
	EndCode        int     `json:"end_code,omitempty"`
	EndedBy        string  `json:"ended_by,omitempty"`
	TransferTarget string  `json:"transfer_target,omitempty"`
}

// jsonRecordLine renders r as one JSON object on a line.
func jsonRecordLine(r *record, loc *time.Location) []byte {
	b, _ := json.Marshal(jsonRecord{
		CallID:         r.callID,
		Caller:         r.caller,
		Callee:         r.callee,
		Start:          timeField(r.start, loc),
		Answer:         timeField(r.answer, loc),
		End:            timeField(r.end, loc),
		Duration:       seconds(r.duration()),
		Disposition:    r.disposition,
		EndCode:        r.code,
		EndedBy:        r.endedBy,
		TransferTarget: r.transfer,
	})
	return append(b, '\n')
}
