package capture

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxPending bounds the calls whose stage decisions wait for their first
// message: decisions come from the transactions, messages from the
// exporter's goroutine, in either order.
const maxPending = 256

// answerWindow bounds how long before a message written an answer to it
// may have been recorded. sipgo's tracer reports a message written after
// the write returns, so a quick answer can be read, and recorded, first.
// It is less than T1/2, the shortest gap between a message's copies, so
// a retransmission is never taken for the cause of an answer to an
// earlier copy.
const answerWindow = 100 * time.Millisecond

// Recorder keeps the messages of the last calls, and of every traced call,
// with what each stage decided on them, for the console's call ladders; and
// a record of the recent calls (CDRs). It is fed by the exporter, so that
// the capture and the console share one tap and one goroutine. What it
// holds is bounded in calls and in bytes.
type Recorder struct {
	mu       sync.Mutex
	maxCalls int
	maxBytes int
	maxCDRs  int
	bytes    int
	calls    map[string]*recording
	order    []string // call IDs of calls, oldest first
	untraced int      // calls not traced, of those in order
	pending  map[string][]decided
	cdrs     map[string]*CDR
	cdrOrder []string
}

// Message is one SIP message of a call as the proxy read or wrote it.
type Message struct {
	Time time.Time `json:"time"`
	// Direction is "in" (read by the proxy) or "out" (written by it).
	Direction string `json:"direction"`
	// Src and Dst are addresses; the proxy's own side is "proxy".
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	Transport string `json:"transport"`
	FirstLine string `json:"first_line"`
	Text      string `json:"text"`
	// Decisions are what the stages did with a message read, from the
	// pipeline's trace steps.
	Decisions []Decision `json:"decisions"`

	// raw is the message as captured (the exporter's copy, never written
	// to), src and dst its addresses: Call makes the strings above from
	// them, so that a message recorded costs no copy.
	raw      []byte
	src, dst netip.AddrPort
	// cseq is the CSeq header, its spaces made single; code is a
	// response's status code, 0 for a request.
	cseq string
	code int
}

// Decision is one stage's step on a message: whether its rule matched and
// its verdict.
type Decision struct {
	Stage   string `json:"stage"`
	Matched bool   `json:"matched"`
	Verdict string `json:"verdict,omitempty"`
}

type decided struct {
	key string
	d   Decision
}

// CDR is a call's record: who called whom, when it was answered and ended,
// and how it ended.
type CDR struct {
	CallID string    `json:"call_id"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	State  string    `json:"state"` // trying, ringing, answered, ended
	Start  time.Time `json:"start"`
	Answer time.Time `json:"answer,omitzero"`
	End    time.Time `json:"end,omitzero"`
	// Outcome is "answered", "busy", "cancelled", "failed", or "" while
	// the call is being set up.
	Outcome string `json:"outcome"`
	Code    int    `json:"code"`
}

type recording struct {
	traced    bool
	messages  []Message
	bytes     int
	decisions []decided
}

// NewRecorder returns a recorder that keeps the messages of calls calls at
// most (traced calls too, past them, within the bytes), of bytes bytes at
// most, and the records of cdrs calls.
func NewRecorder(calls, bytes, cdrs int) *Recorder {
	return &Recorder{maxCalls: calls, maxBytes: bytes, maxCDRs: cdrs,
		calls: map[string]*recording{}, pending: map[string][]decided{}, cdrs: map[string]*CDR{}}
}

// Record keeps p, a whole message read (dir "in") or written ("out"), if
// it belongs to a call (an INVITE's Call-ID) or traced is true (the
// message trace selects it).
func (r *Recorder) Record(p *Packet, dir string, traced bool) {
	head := p.Payload
	if end := bytes.Index(head, []byte("\r\n\r\n")); end >= 0 {
		head = head[:end+2]
	}
	callID := header(head, "call-id", "i")
	if callID == "" {
		return
	}
	first, _, _ := bytes.Cut(head, []byte("\r\n"))
	cseq := header(head, "cseq", "")
	_, method, _ := strings.Cut(cseq, " ")
	method = strings.TrimSpace(method)
	request := !bytes.HasPrefix(first, []byte("SIP/"))
	code := 0
	if !request && len(first) >= 11 {
		code, _ = strconv.Atoi(string(first[8:11]))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if request || dir == "out" {
		r.cdr(callID, head, request, method, code, p.Time)
	}
	rec := r.calls[callID]
	if rec == nil {
		startsCall := request && method == "INVITE" && !strings.Contains(header(head, "to", "t"), "tag=")
		if !startsCall && !traced {
			return
		}
		rec = &recording{decisions: r.pending[callID]}
		delete(r.pending, callID)
		r.calls[callID] = rec
		r.order = append(r.order, callID)
		r.untraced++
	}
	if traced && !rec.traced {
		rec.traced = true
		r.untraced--
	}
	if rec.bytes+len(p.Payload) > r.maxBytes/4 {
		return // one call may not push out all the others
	}
	rec.add(Message{Time: p.Time, Direction: dir, Transport: p.Transport,
		raw: p.Payload, src: p.Src, dst: p.Dst, cseq: singleSpaced(cseq), code: code})
	rec.bytes += len(p.Payload)
	r.bytes += len(p.Payload)
	r.evict()
}

// add keeps m in the call's order: a message written goes before the
// answers to it recorded first (see answerWindow), with the time of the
// first of them, as it was on the wire before they were read.
func (rec *recording) add(m Message) {
	at := len(rec.messages)
	for i := len(rec.messages) - 1; m.Direction == "out" && i >= 0; i-- {
		a := &rec.messages[i]
		if m.Time.Sub(a.Time) > answerWindow {
			break
		}
		if a.Direction == "in" && a.src == m.dst && answers(a, &m) {
			at = i
		}
	}
	if at < len(rec.messages) && rec.messages[at].Time.Before(m.Time) {
		m.Time = rec.messages[at].Time
	}
	rec.messages = slices.Insert(rec.messages, at, m)
}

// answers reports whether a, a message read, answers m, one written to
// the same party: a response to the request m, or the ACK of m, a final
// response to an INVITE.
func answers(a, m *Message) bool {
	if m.code == 0 {
		return a.code != 0 && a.cseq == m.cseq && !strings.HasSuffix(m.cseq, " ACK")
	}
	num, method, _ := strings.Cut(m.cseq, " ")
	return m.code >= 200 && method == "INVITE" && a.code == 0 && a.cseq == num+" ACK"
}

// evict drops the oldest untraced calls past maxCalls, then the oldest
// calls of any kind while the bytes exceed maxBytes. It walks only the
// calls it drops (and traced ones before them): it runs on every message.
func (r *Recorder) evict() {
	over := func() bool { return r.untraced > r.maxCalls || r.bytes > r.maxBytes }
	if !over() {
		return
	}
	kept := r.order[:0]
	for i, id := range r.order {
		if !over() {
			kept = append(kept, r.order[i:]...)
			break
		}
		rec := r.calls[id]
		if rec.traced && r.bytes <= r.maxBytes {
			kept = append(kept, id)
			continue
		}
		if !rec.traced {
			r.untraced--
		}
		r.bytes -= rec.bytes
		delete(r.calls, id)
	}
	clear(r.order[len(kept):])
	r.order = kept
}

// Decide records a stage's step on the request or response that key
// names (see StepKey), for the call callID.
func (r *Recorder) Decide(callID, key string, d Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.calls[callID]; rec != nil {
		if len(rec.decisions) < 256 {
			rec.decisions = append(rec.decisions, decided{key, d})
		}
		return
	}
	if _, ok := r.pending[callID]; !ok && len(r.pending) >= maxPending {
		clear(r.pending)
	}
	if len(r.pending[callID]) < 64 {
		r.pending[callID] = append(r.pending[callID], decided{key, d})
	}
}

// StepKey names a request (by its CSeq) or a response (by its code and
// CSeq), to match the stages' decisions with the message they were on.
func StepKey(request bool, code int, cseq string) string { return stepKey(request, code, cseq) }

func stepKey(request bool, code int, cseq string) string {
	cseq = singleSpaced(cseq)
	if request {
		return cseq
	}
	return strconv.Itoa(code) + " " + cseq
}

// singleSpaced returns s with its runs of spaces and tabs made single
// spaces and trimmed; s itself when it has none.
func singleSpaced(s string) string {
	clean := len(s) == 0 || s[0] != ' ' && s[len(s)-1] != ' '
	for i := 0; clean && i < len(s); i++ {
		clean = s[i] != '\t' && (s[i] != ' ' || s[i+1] != ' ')
	}
	if clean {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Call returns the messages kept of the call callID, oldest first, each
// read one with the decisions on it; false when none are kept.
func (r *Recorder) Call(callID string) ([]Message, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.calls[callID]
	if rec == nil {
		return nil, false
	}
	out := make([]Message, len(rec.messages))
	copy(out, rec.messages)
	given := map[string]bool{}
	for i := range out {
		m := &out[i]
		m.Text = string(m.raw)
		first, _, _ := strings.Cut(m.Text, "\r\n")
		m.FirstLine = first
		m.Src, m.Dst = m.src.String(), "proxy"
		if m.Direction == "out" {
			m.Src, m.Dst = "proxy", m.dst.String()
		}
		m.Decisions = []Decision{}
		key := stepKey(m.code == 0, m.code, m.cseq)
		if m.Direction != "in" || given[key] {
			continue
		}
		for _, d := range rec.decisions {
			if d.key == key {
				m.Decisions = append(m.Decisions, d.d)
				given[key] = true
			}
		}
	}
	return out, true
}

// CDR returns the record of the call callID, if kept.
func (r *Recorder) CDR(callID string) (CDR, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cdrs[callID]
	if !ok {
		return CDR{}, false
	}
	return *c, true
}

// CDRs returns the records kept, oldest first.
func (r *Recorder) CDRs() []CDR {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CDR, 0, len(r.cdrOrder))
	for _, id := range r.cdrOrder {
		out = append(out, *r.cdrs[id])
	}
	return out
}

// cdr follows a call's record through the messages: an INVITE that starts
// a dialog opens it, the INVITE's responses the proxy sends give its
// state and outcome, a BYE ends it.
func (r *Recorder) cdr(callID string, head []byte, request bool, method string, code int, at time.Time) {
	c := r.cdrs[callID]
	switch {
	case c == nil:
		if !request || method != "INVITE" || strings.Contains(header(head, "to", "t"), "tag=") {
			return
		}
		c = &CDR{CallID: callID, From: header(head, "from", "f"), To: header(head, "to", "t"), State: "trying", Start: at}
		r.cdrs[callID] = c
		r.cdrOrder = append(r.cdrOrder, callID)
		if len(r.cdrOrder) > r.maxCDRs {
			delete(r.cdrs, r.cdrOrder[0])
			r.cdrOrder = r.cdrOrder[1:]
		}
	case request && method == "BYE" && c.End.IsZero():
		c.State, c.End = "ended", at
	case !request && method == "INVITE" && c.End.IsZero() && c.Answer.IsZero():
		switch {
		case code == 180 || code == 183:
			c.State = "ringing"
		case code >= 200 && code < 300:
			c.State, c.Answer, c.Outcome, c.Code = "answered", at, "answered", code
		case code >= 300:
			c.State, c.End, c.Code, c.Outcome = "ended", at, code, outcome(code)
		}
	}
}

// outcome names how a call that was not answered ended.
func outcome(code int) string {
	switch code {
	case 486, 600:
		return "busy"
	case 487:
		return "cancelled"
	case 408, 480:
		return "unanswered"
	}
	if code < 400 {
		return "redirected"
	}
	return "failed"
}
