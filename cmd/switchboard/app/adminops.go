package app

import (
	"encoding/json"
	"errors"
	"fmt"
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
	mux.HandleFunc("GET /admin/destinations", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.destinations())
	})
	for path, on := range map[string]bool{"/admin/destinations/drain": true, "/admin/destinations/undrain": false} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, req *http.Request) {
			uri, set, err := drainArgs(w, req)
			if err != nil {
				answer(w)(nil, err)
				return
			}
			answer(w)(o.drain(uri, set, on))
		})
	}
	mux.HandleFunc("GET /admin/forwarding", func(w http.ResponseWriter, req *http.Request) {
		answer(w)(o.forwarding(req.URL.Query().Get("aor")))
	})
	mux.HandleFunc("POST /admin/forwarding", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		answer(w)(o.setForwarding(q.Get("aor"), q))
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

// drainArgs reads the destination a drain or undrain names: from the query
// (uri, set), or from a JSON body {"uri": "sip:...", "set": "optional"}.
func drainArgs(w http.ResponseWriter, req *http.Request) (uri, set string, err error) {
	q := req.URL.Query()
	if q.Get("uri") != "" {
		return q.Get("uri"), q.Get("set"), nil
	}
	var body struct {
		URI string `json:"uri"`
		Set string `json:"set"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 4096)).Decode(&body); err != nil {
		return "", "", fmt.Errorf("%w: send ?uri=sip:...&set=optional, or {\"uri\": \"sip:...\", \"set\": \"optional\"}", errInvalid)
	}
	return body.URI, body.Set, nil
}
