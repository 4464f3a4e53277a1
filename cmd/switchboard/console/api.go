package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/capture"
)

// Backend runs the operations the console shows and makes; the app's
// admin operations implement it, so that the console, the HTTP admin API
// and `switchboard ctl` share one implementation.
type Backend interface {
	Overview() Overview
	// Registrations returns the AORs whose AOR or contacts hold q ("" for
	// all), as a JSON value.
	Registrations(q string) (any, error)
	Unregister(aor, contact string) (any, error)
	Calls() (active, recent []Call)
	// Call returns one call's record and messages; false when nothing of
	// it is kept.
	Call(callID string) (CallDetail, bool)
	Config() ConfigView
	Validate(text string) []ConfigError
	// Save validates text and writes it in place of the config file, if
	// the file's hash is still hash, then reloads; session names who did.
	Save(text, hash, session string) (SaveResult, error)
	Diff() Diff
	Reloads() []Reload
}

// The refusals of Save, told apart by the answer's status.
var (
	ErrChanged  = errors.New("the config file changed since it was loaded: reload the page")
	ErrReadOnly = errors.New("the config file cannot be written here")
	ErrInvalid  = errors.New("the config does not validate: nothing was saved")
)

// Overview is the dashboard's numbers.
type Overview struct {
	CallsInProgress int            `json:"calls_in_progress"`
	CallsPerSecond  float64        `json:"calls_per_second"`
	Registrations   int            `json:"registrations"`
	AORs            int            `json:"aors"`
	Responses       map[string]int `json:"responses"`
}

// Call is a call's record, in progress or ended, as the recorder keeps it.
type Call = capture.CDR

// CallDetail is one call with its parties and messages.
type CallDetail struct {
	Call     Call     `json:"call"`
	Parties  []string `json:"parties"`
	Messages any      `json:"messages"`
}

// ConfigView is the config file as it is now.
type ConfigView struct {
	Path     string `json:"path"`
	Text     string `json:"text"`
	Hash     string `json:"hash"`
	Writable bool   `json:"writable"`
	ReadOnly string `json:"read_only"`
}

// ConfigError is one mistake, at its line and column (0 when unknown).
type ConfigError struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// SaveResult is what a save did.
type SaveResult struct {
	Saved        bool          `json:"saved"`
	Outcome      string        `json:"outcome"`
	NeedsRestart []string      `json:"needs_restart"`
	Errors       []ConfigError `json:"errors"`
}

// Diff compares the config in force with the file.
type Diff struct {
	RunningHash string `json:"running_hash"`
	FileHash    string `json:"file_hash"`
	Diff        string `json:"diff"`
}

// Reload is one reload of the history.
type Reload struct {
	Time    time.Time `json:"time"`
	Hash    string    `json:"hash"`
	Outcome string    `json:"outcome"`
	Cause   string    `json:"cause"`
	Session string    `json:"session"`
}

func withSession(req *http.Request, ss *session) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), sessionKey{}, ss))
}

func sessionOf(req *http.Request) *session {
	ss, _ := req.Context().Value(sessionKey{}).(*session)
	return ss
}

// maxConfig bounds a config sent to validate or save.
const maxConfig = 1 << 20

func (h *Handler) api() http.Handler {
	b := h.opts.Backend
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/api/session", func(w http.ResponseWriter, req *http.Request) {
		ss := sessionOf(req)
		writeJSON(w, http.StatusOK, map[string]any{"csrf": ss.csrf, "session": ss.name, "expires": ss.expires})
	})
	mux.HandleFunc("GET /console/api/overview", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, b.Overview())
	})
	mux.HandleFunc("GET /console/api/events", h.events)
	mux.HandleFunc("GET /console/api/registrations", func(w http.ResponseWriter, req *http.Request) {
		answer(w)(b.Registrations(req.URL.Query().Get("q")))
	})
	mux.HandleFunc("POST /console/api/unregister", func(w http.ResponseWriter, req *http.Request) {
		var body struct{ AOR, Contact string }
		if !decode(w, req, &body) {
			return
		}
		answer(w)(b.Unregister(body.AOR, body.Contact))
	})
	mux.HandleFunc("GET /console/api/calls", func(w http.ResponseWriter, req *http.Request) {
		f, err := callFilter(req)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		active, recent := b.Calls()
		writeJSON(w, http.StatusOK, map[string][]Call{"active": f.apply(active), "recent": f.apply(recent)})
	})
	mux.HandleFunc("GET /console/api/calls/{id}", func(w http.ResponseWriter, req *http.Request) {
		d, ok := b.Call(req.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "nothing is kept of this call")
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("GET /console/api/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, b.Config())
	})
	mux.HandleFunc("POST /console/api/config/validate", func(w http.ResponseWriter, req *http.Request) {
		var body struct{ Text string }
		if !decode(w, req, &body) {
			return
		}
		errs := b.Validate(body.Text)
		writeJSON(w, http.StatusOK, map[string]any{"ok": len(errs) == 0, "errors": nonNil(errs)})
	})
	mux.HandleFunc("POST /console/api/config/save", func(w http.ResponseWriter, req *http.Request) {
		var body struct{ Text, Hash string }
		if !decode(w, req, &body) {
			return
		}
		res, err := b.Save(body.Text, body.Hash, sessionOf(req).name)
		res.Errors = nonNil(res.Errors)
		if res.NeedsRestart == nil {
			res.NeedsRestart = []string{}
		}
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, res)
		case errors.Is(err, ErrChanged):
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "saved": false})
		case errors.Is(err, ErrInvalid):
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "saved": false, "errors": res.Errors})
		case errors.Is(err, ErrReadOnly):
			writeJSON(w, http.StatusForbidden, map[string]any{"error": err.Error(), "saved": false})
		default:
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "saved": false})
		}
	})
	mux.HandleFunc("GET /console/api/config/diff", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, b.Diff())
	})
	mux.HandleFunc("GET /console/api/reloads", func(w http.ResponseWriter, _ *http.Request) {
		rs := b.Reloads()
		if rs == nil {
			rs = []Reload{}
		}
		writeJSON(w, http.StatusOK, rs)
	})
	mux.HandleFunc("/console/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such API")
	})
	return mux
}

func nonNil(errs []ConfigError) []ConfigError {
	if errs == nil {
		return []ConfigError{}
	}
	return errs
}

// decode reads a JSON body into v, or answers 400.
func decode(w http.ResponseWriter, req *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxConfig)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not the JSON expected: "+err.Error())
		return false
	}
	return true
}

// answer writes an operation's result, or its error: 404 when it names
// nothing there, 400 otherwise.
func answer(w http.ResponseWriter) func(any, error) {
	return func(v any, err error) { answerErr(w, v, err) }
}

func answerErr(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case strings.Contains(err.Error(), "not found"):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}

// filter picks calls by user (in From or To), outcome and start.
type filter struct {
	user, outcome string
	since         time.Time
}

func callFilter(req *http.Request) (filter, error) {
	q := req.URL.Query()
	f := filter{user: q.Get("user"), outcome: q.Get("outcome")}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return f, fmt.Errorf("since: %q is not an RFC 3339 time", s)
		}
		f.since = t
	}
	return f, nil
}

func (f filter) apply(calls []Call) []Call {
	out := []Call{}
	for _, c := range calls {
		if f.user != "" && !strings.Contains(c.From, f.user) && !strings.Contains(c.To, f.user) {
			continue
		}
		if f.outcome != "" && c.Outcome != f.outcome {
			continue
		}
		if !f.since.IsZero() && c.Start.Before(f.since) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// events pushes the overview every second, and tells when the
// registrations or the calls changed, until the client goes or the
// session ends.
func (h *Handler) events(w http.ResponseWriter, req *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	ss := sessionOf(req)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastRegs, lastCalls string
	for {
		o := h.opts.Backend.Overview()
		send(w, "overview", o)
		regs := fmt.Sprint(o.Registrations, o.AORs)
		active, recent := h.opts.Backend.Calls()
		calls := fmt.Sprint(len(active), len(recent), lastState(active), lastState(recent))
		if lastRegs != "" && regs != lastRegs {
			send(w, "registrations", map[string]bool{"changed": true})
		}
		if lastCalls != "" && calls != lastCalls {
			send(w, "calls", map[string]bool{"changed": true})
		}
		lastRegs, lastCalls = regs, calls
		fl.Flush()
		select {
		case <-req.Context().Done():
			return
		case <-tick.C:
		}
		if !h.opts.Now().Before(ss.expires) {
			return
		}
	}
}

func lastState(calls []Call) string {
	if len(calls) == 0 {
		return ""
	}
	c := calls[len(calls)-1]
	return c.CallID + c.State
}

func send(w http.ResponseWriter, event string, v any) {
	data, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
}
