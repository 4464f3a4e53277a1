package app

import (
	"encoding/json"
	"net/http"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/destinations"
)

// destinationRoutes adds the destination sets' handlers: their health, and
// draining a destination for maintenance.
func (a *admin) destinationRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/destinations", a.guard(a.destinations))
	mux.Handle("POST /admin/destinations/drain", a.guard(a.drain(true)))
	mux.Handle("POST /admin/destinations/undrain", a.guard(a.drain(false)))
}

// destinations lists the destinations of the sets in use and their health.
func (a *admin) destinations(w http.ResponseWriter, _ *http.Request) {
	out := []destinations.State{}
	for _, d := range destinations.All(&a.svc.Shared) {
		out = append(out, d.State())
	}
	writeJSON(w, http.StatusOK, out)
}

// drainRequest names the destination to drain: its URI as config.toml
// writes it, in every set, or in one set only.
type drainRequest struct {
	URI string `json:"uri"`
	Set string `json:"set"`
}

// drain stops (on) or resumes sending new requests to a destination; the
// requests in progress go on. It answers with the destinations changed.
func (a *admin) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var dr drainRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 4096)).Decode(&dr); err != nil || dr.URI == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"uri": "sip:...", "set": "optional"}`})
			return
		}
		var uri sip.Uri
		if err := sip.ParseUri(dr.URI, &uri); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "uri: " + err.Error()})
			return
		}
		changed := []destinations.State{}
		for _, d := range destinations.All(&a.svc.Shared) {
			if d.URI.String() != uri.String() || dr.Set != "" && d.Set != dr.Set {
				continue
			}
			d.Drain(on)
			changed = append(changed, d.State())
		}
		if len(changed) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no destination " + dr.URI + " in the sets in use"})
			return
		}
		writeJSON(w, http.StatusOK, changed)
	}
}
