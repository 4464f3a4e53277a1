package calllog

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-sip/switchboard/pipeline"
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
var names = [...]string{
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

// String returns the event's name.
func (k kind) String() string { return names[k] }

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
// the json format's "detail". It comes in two parts, a fixed text and the
// name or reason phrase that follows it ("Call hung up by ", "alice"), so
// that it is written without being put together first; text is "" for an
// event without one.
func (e *event) detail() (text, name string) {
	switch e.kind {
	case evCancelled:
		return "Call hung up by ", e.by
	case evRejected:
		if e.code == 603 {
			return "Call hung up by ", e.by
		}
		return "Call rejected by ", e.by
	case evNoAnswer:
		return "No answer", ""
	case evFailed:
		if e.reason == "" {
			return "Call failed", ""
		}
		return "Call failed: ", e.reason
	case evUnknownBye:
		return "Unknown call", ""
	}
	return "", ""
}

// Time layouts.
const (
	seedTime = "02.01.2006 15:04:05"
	jsonTime = "2006-01-02T15:04:05.000Z07:00"
)

// appendSeedLine appends e as the seed's logger wrote it: the local time
// and the fields, comma-separated, without spaces around the commas. With
// seedOnly, a classified re-INVITE is a SWITCH INVITE, as it was.
func appendSeedLine(b []byte, e *event, loc *time.Location, seedOnly bool) []byte {
	k := e.kind
	if seedOnly {
		switch k {
		case evHold, evResume, evVideoOn, evVideoOff:
			k = evSwitchInvite
		}
	}
	b = e.at.In(loc).AppendFormat(b, seedTime)
	switch k {
	case evRegister, evUnregister:
		b = appendSeedFields(b, k.String(), e.user)
	case evInvite, evRinging, evStarted:
		b = appendSeedFields(b, k.String(), e.caller, e.callee)
	case evCancelled, evRejected, evNoAnswer, evFailed:
		b = strconv.AppendInt(append(b, ','), int64(e.code), 10)
		b = appendSeedFields(b, e.caller, e.callee)
		b = appendSeedDetail(b, e)
	case evSwitchInvite, evHold, evResume, evVideoOn, evVideoOff, evSwitchAck:
		b = appendSeedFields(b, k.String(), e.by, e.other)
	case evTransfer:
		b = appendSeedFields(b, k.String(), e.by, e.other)
		b = appendSeedText(append(b, ",Transfer to "...), e.target)
	case evEnded:
		b = appendSeedFields(b, k.String(), e.by, e.other)
		b = appendCentiseconds(append(b, ",Call duration: "...), e.duration)
		b = append(b, " seconds"...)
	case evUnknownBye:
		b = appendSeedFields(b, k.String(), e.caller, e.callee)
		b = appendSeedDetail(b, e)
	}
	return append(b, '\n')
}

// appendSeedFields appends each field after a comma.
func appendSeedFields(b []byte, fields ...string) []byte {
	for _, f := range fields {
		b = appendSeedText(append(b, ','), f)
	}
	return b
}

// appendSeedDetail appends the event's detail as the last field.
func appendSeedDetail(b []byte, e *event) []byte {
	text, name := e.detail()
	return appendSeedText(appendSeedText(append(b, ','), text), name)
}

// appendSeedText appends s to a field, its commas, CRs and LFs written
// %2C, %0D and %0A so that it breaks the line into no more fields or
// lines.
func appendSeedText(b []byte, s string) []byte {
	for {
		i := strings.IndexAny(s, ",\r\n")
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		switch s[i] {
		case ',':
			b = append(b, "%2C"...)
		case '\r':
			b = append(b, "%0D"...)
		case '\n':
			b = append(b, "%0A"...)
		}
		s = s[i+1:]
	}
}

// seedHeader is the line the seed's logger wrote when the server started.
func seedHeader(at time.Time, loc *time.Location) string {
	return "===== Starting server (" + at.In(loc).Format(seedTime) + ") =====\n"
}

// appendJSONLine appends e as one JSON object on a line, its keys in the
// order of the README, the empty ones left out, written byte for byte as
// encoding/json writes them.
func appendJSONLine(b []byte, e *event, loc *time.Location) []byte {
	b = append(b, `{"time":"`...)
	b = e.at.In(loc).AppendFormat(b, jsonTime)
	b = append(b, `","event":`...)
	b = appendJSONString(b, e.kind.String())
	b = appendJSONMember(b, "call_id", e.callID)
	b = appendJSONMember(b, "user", e.user)
	b = appendJSONMember(b, "caller", e.caller)
	b = appendJSONMember(b, "callee", e.callee)
	b = appendJSONMember(b, "by", e.by)
	if e.code != 0 {
		b = strconv.AppendInt(append(b, `,"code":`...), int64(e.code), 10)
	}
	if e.kind == evEnded {
		b = strconv.AppendInt(append(b, `,"duration_ms":`...), e.duration.Round(time.Millisecond).Milliseconds(), 10)
	}
	b = appendJSONMember(b, "target", e.target)
	// The detail's text is ASCII, so escaping its two parts one after the
	// other is escaping the whole.
	if text, name := e.detail(); text != "" {
		b = append(b, `,"detail":"`...)
		b = appendJSONEscaped(appendJSONEscaped(b, text), name)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// appendJSONMember appends `,"key":"value"`, or nothing when value is
// empty. key is written as it is.
func appendJSONMember(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return appendJSONString(b, value)
}

// appendJSONValue appends the member key with v as encoding/json writes
// it: for the rare lists of a record (forwards, attempts).
func appendJSONValue(b []byte, key string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return append(b, data...)
}

// appendJSONTime appends t as a JSON string in the jsonTime layout, ""
// for the zero time. The layout writes no character that JSON escapes.
func appendJSONTime(b []byte, t time.Time, loc *time.Location) []byte {
	b = append(b, '"')
	b = appendTime(b, t, loc)
	return append(b, '"')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	return append(appendJSONEscaped(append(b, '"'), s), '"')
}

// appendJSONEscaped appends s escaped as encoding/json escapes the
// contents of a string: quotes, backslashes and control characters, the
// HTML characters <, > and &, U+2028 and U+2029, and each byte that is
// not UTF-8 as \ufffd.
func appendJSONEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// appendCentiseconds appends d in seconds with two decimals, rounded half
// up from the millisecond: 17233ms is "17.23", 60345ms "60.35". d is not
// negative.
func appendCentiseconds(b []byte, d time.Duration) []byte {
	return appendDecimal(b, (d.Round(time.Millisecond).Milliseconds()+5)/10, 2)
}

// appendMilliseconds appends d in seconds with three decimals. d is not
// negative.
func appendMilliseconds(b []byte, d time.Duration) []byte {
	return appendDecimal(b, d.Round(time.Millisecond).Milliseconds(), 3)
}

// appendDecimal appends n / 10^digits with digits decimals: n = 1723 with
// two digits is "17.23", n = 5 with three "0.005". n is not negative.
func appendDecimal(b []byte, n int64, digits int) []byte {
	unit := int64(1)
	for range digits {
		unit *= 10
	}
	b = strconv.AppendInt(b, n/unit, 10)
	b = append(b, '.')
	frac := n % unit
	for pad := unit / 10; pad > 1 && frac < pad; pad /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, frac, 10)
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
	// authUser is the user the auth stage authenticated the INVITE as.
	authUser string
	// attempts are the call's branches and forwards (nil: none known).
	attempts *pipeline.Attempts
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

// csvHeader is the header line of a CSV file of records.
const csvHeader = "call_id,caller,callee,start,answer,end,duration,disposition,end_code,ended_by,transfer_target,auth_user,forwarded_from,attempts\n"

// appendTime appends a time of a record in the jsonTime layout, nothing
// for the zero time.
func appendTime(b []byte, t time.Time, loc *time.Location) []byte {
	if t.IsZero() {
		return b
	}
	return t.In(loc).AppendFormat(b, jsonTime)
}

// appendCSVLine appends r as a CSV line, as encoding/csv writes it (see
// appendCSVField). The times, numbers and dispositions never need quotes.
func appendCSVLine(b []byte, r *record, loc *time.Location) []byte {
	b = appendCSVField(b, r.callID)
	b = appendCSVField(append(b, ','), r.caller)
	b = appendCSVField(append(b, ','), r.callee)
	b = appendTime(append(b, ','), r.start, loc)
	b = appendTime(append(b, ','), r.answer, loc)
	b = appendTime(append(b, ','), r.end, loc)
	b = appendMilliseconds(append(b, ','), r.duration())
	b = append(append(b, ','), r.disposition...)
	b = append(b, ',')
	if r.code != 0 {
		b = strconv.AppendInt(b, int64(r.code), 10)
	}
	b = appendCSVField(append(b, ','), r.endedBy)
	b = appendCSVField(append(b, ','), r.transfer)
	b = appendCSVField(append(b, ','), r.authUser)
	b = appendCSVField(append(b, ','), r.attempts.ForwardedFrom())
	b = appendCSVField(append(b, ','), r.attempts.String())
	return append(b, '\n')
}

// appendCSVField appends s as encoding/csv's Writer (comma ',', LF line
// ends) writes a field: in quotes, its quotes doubled, when it has a
// comma, a quote, a CR or an LF, begins with a space (any Unicode space)
// or is `\.`; as it is otherwise.
func appendCSVField(b []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}

// csvNeedsQuotes reports whether encoding/csv quotes the field s.
func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` || strings.ContainsAny(s, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// appendJSONRecordLine appends r as one JSON object on a line, written
// byte for byte as encoding/json writes it: the keys of the README in its
// order, answer, end_code, ended_by, transfer_target and auth_user left
// out when empty.
func appendJSONRecordLine(b []byte, r *record, loc *time.Location) []byte {
	b = append(b, `{"call_id":`...)
	b = appendJSONString(b, r.callID)
	b = append(b, `,"caller":`...)
	b = appendJSONString(b, r.caller)
	b = append(b, `,"callee":`...)
	b = appendJSONString(b, r.callee)
	b = append(b, `,"start":`...)
	b = appendJSONTime(b, r.start, loc)
	if !r.answer.IsZero() {
		b = append(b, `,"answer":`...)
		b = appendJSONTime(b, r.answer, loc)
	}
	b = append(b, `,"end":`...)
	b = appendJSONTime(b, r.end, loc)
	// encoding/json writes a float64 between 1e-6 and 1e21 in the 'f'
	// format; a duration in seconds to the millisecond is 0 or in that
	// range.
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, seconds(r.duration()), 'f', -1, 64)
	b = append(b, `,"disposition":`...)
	b = appendJSONString(b, r.disposition)
	if r.code != 0 {
		b = strconv.AppendInt(append(b, `,"end_code":`...), int64(r.code), 10)
	}
	b = appendJSONMember(b, "ended_by", r.endedBy)
	b = appendJSONMember(b, "transfer_target", r.transfer)
	b = appendJSONMember(b, "auth_user", r.authUser)
	b = appendJSONMember(b, "forwarded_from", r.attempts.ForwardedFrom())
	tries, forwards := r.attempts.Copy()
	if len(forwards) > 0 {
		b = appendJSONValue(b, "forwards", forwards)
	}
	if len(tries) > 0 {
		b = appendJSONValue(b, "attempts", tries)
	}
	return append(b, "}\n"...)
}

// seconds returns d in seconds, rounded to the millisecond.
func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond).Milliseconds()) / 1000
}
