package app

import (
	"errors"
	"net/http"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
)

// adminHandler serves the admin operations under /admin/: the HTTP
// listener behind its token, the control socket behind its file mode.
// cause names the door in the reload's log line.
func adminHandler(o *operations, cause string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/registrations", func(w http.ResponseWriter, req *http.Request) {
		answer(w)(o.registrations(req.URL.Query().Get("aor")))
	})
	mux.HandleFunc("DELETE /admin/registrations", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		answer(w)(o.unregister(q.Get("aor"), q.Get("contact")))
	})
	mux.HandleFunc("GET /admin/calls", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.calls())
	})
	mux.HandleFunc("GET /admin/outbound", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.outbound())
	})
	mux.HandleFunc("GET /admin/keepalives", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.keepalives())
	})
	mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, _ *http.Request) {
		answer(w)(o.stats())
	})
	mux.HandleFunc("GET /admin/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.config())
	})
	mux.HandleFunc("POST /admin/reload", func(w http.ResponseWriter, _ *http.Request) {
		out := o.reload(cause)
		if out.Result == "failed" {
			// The outcome, with an error that says what stays.
			writeJSON(w, http.StatusUnprocessableEntity, struct {
				ctl.Outcome
				Error string `json:"error"`
			}{out, "reload failed: the config in force stays"})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /admin/trace", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		answer(w)(o.trace(q.Get("user"), q.Get("state")))
	})
	mux.HandleFunc("POST /admin/log-level", func(w http.ResponseWriter, req *http.Request) {
		answer(w)(o.logLevel(req.URL.Query().Get("level")))
	})
	return mux
}

// answer writes an operation's result, or its error with the status that
// fits: 400 for a bad argument, 404 for nothing to act on, 503 for a
// store that failed.
func answer(w http.ResponseWriter) func(any, error) {
	return func(v any, err error) {
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, v)
		case errors.Is(err, errInvalid):
			writeJSON(w, http.StatusBadRequest, ctl.Problem{Error: err.Error()})
		case errors.Is(err, errNotFound):
			writeJSON(w, http.StatusNotFound, ctl.Problem{Error: err.Error()})
		default:
			writeJSON(w, http.StatusServiceUnavailable, ctl.Problem{Error: err.Error()})
		}
	}
}
