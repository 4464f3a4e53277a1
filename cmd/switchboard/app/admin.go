package app

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/keepalive"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// admin is the HTTP listener: metrics, health, readiness and the admin API.
type admin struct {
	cfg config.HTTP
	eng *engine.Engine
	svc *pipeline.Services
	r   *reloader
	log *slog.Logger
	srv *http.Server
}

// startAdmin listens on cfg.Listen and serves until stop is called. The
// listen address and token are read at start: changing them needs a
// restart.
func startAdmin(cfg config.HTTP, eng *engine.Engine, svc *pipeline.Services, r *reloader, log *slog.Logger) (*admin, error) {
	a := &admin{cfg: cfg, eng: eng, svc: svc, r: r, log: log}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	a.srv = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http listener stopped", "error", err)
		}
	}()
	log.Info("http listening", "addr", ln.Addr().String(), "admin", cfg.Token != "")
	return a, nil
}

func (a *admin) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

func (a *admin) routes() http.Handler {
	mux := http.NewServeMux()
	if a.svc.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.svc.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", a.ready)
	mux.Handle("GET /admin/registrations", a.guard(a.registrations))
	mux.Handle("GET /admin/calls", a.guard(a.calls))
	mux.Handle("GET /admin/keepalives", a.guard(a.keepalives))
	mux.Handle("GET /admin/config", a.guard(a.config))
	mux.Handle("POST /admin/reload", a.guard(a.reload))
	if a.cfg.Pprof {
		mux.Handle("/debug/pprof/", a.guard(pprof.Index))
		mux.Handle("/debug/pprof/cmdline", a.guard(pprof.Cmdline))
		mux.Handle("/debug/pprof/profile", a.guard(pprof.Profile))
		mux.Handle("/debug/pprof/symbol", a.guard(pprof.Symbol))
		mux.Handle("/debug/pprof/trace", a.guard(pprof.Trace))
	}
	return mux
}

// guard lets a request through only with the configured bearer token.
func (a *admin) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if a.cfg.Token == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the admin API is off: set http.token"})
			return
		}
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong token"})
			return
		}
		h(w, req)
	})
}

// ready is 200 while the proxy takes new calls: a pipeline is in force and
// no graceful stop has begun.
func (a *admin) ready(w http.ResponseWriter, _ *http.Request) {
	switch {
	case a.eng.Pipeline() == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	case a.eng.Draining():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// registration is one AOR's bindings, as the admin API shows them.
type registration struct {
	AOR      string    `json:"aor"`
	Bindings []binding `json:"bindings"`
}

type binding struct {
	Contact   string    `json:"contact"`
	Instance  string    `json:"instance,omitempty"`
	Expires   time.Time `json:"expires"`
	ExpiresIn int       `json:"expires_in"`
	Received  string    `json:"received,omitempty"`
	Transport string    `json:"transport,omitempty"`
	Path      []string  `json:"path,omitempty"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
}

// registrations lists the bindings, of one AOR with ?aor=.
func (a *admin) registrations(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	toJSON := func(aor string, bs []location.Binding) registration {
		r := registration{AOR: aor}
		for _, b := range bs {
			r.Bindings = append(r.Bindings, binding{
				Contact: b.Contact, Instance: b.Instance, Expires: b.Expires, ExpiresIn: int(b.Expires.Sub(now).Seconds()),
				Received: b.Received, Transport: b.Transport, Path: b.Path, CallID: b.CallID, CSeq: b.CSeq,
			})
		}
		return r
	}
	out := []registration{}
	if aor := req.URL.Query().Get("aor"); aor != "" {
		bs, _, err := a.svc.Location.Lookup(aor, now)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		if len(bs) > 0 {
			out = append(out, toJSON(aor, bs))
		}
	} else {
		err := a.svc.Location.Each(now, func(aor string, bs []location.Binding) bool {
			out = append(out, toJSON(aor, bs))
			return true
		})
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AOR < out[j].AOR })
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) calls(w http.ResponseWriter, _ *http.Request) {
	calls := a.svc.Calls()
	if calls == nil {
		calls = []pipeline.CallInfo{}
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
	writeJSON(w, http.StatusOK, calls)
}

// keepaliveView is what the keepalive pinger holds: the bindings behind
// NAT it pings, and the last ones it removed for their silence.
type keepaliveView struct {
	Pinged  []keepalive.Status  `json:"pinged"`
	Removed []keepalive.Removal `json:"removed"`
}

func (a *admin) keepalives(w http.ResponseWriter, _ *http.Request) {
	v := keepaliveView{Pinged: []keepalive.Status{}, Removed: []keepalive.Removal{}}
	if a.svc.Keepalive != nil {
		pinged, removed := a.svc.Keepalive.Flows()
		v.Pinged = append(v.Pinged, pinged...)
		v.Removed = append(v.Removed, removed...)
	}
	sort.Slice(v.Pinged, func(i, j int) bool {
		if v.Pinged[i].AOR != v.Pinged[j].AOR {
			return v.Pinged[i].AOR < v.Pinged[j].AOR
		}
		return v.Pinged[i].Contact < v.Pinged[j].Contact
	})
	writeJSON(w, http.StatusOK, v)
}

// configView is the config in force and the last reload.
type configView struct {
	Path       string   `json:"path"`
	Hash       string   `json:"hash"`
	Stages     []string `json:"stages"`
	LastReload *Outcome `json:"last_reload,omitempty"`
}

func (a *admin) config(w http.ResponseWriter, _ *http.Request) {
	p := a.eng.Pipeline()
	v := configView{Path: p.Config.Path, Hash: p.Config.Hash, Stages: p.Stages()}
	if last := a.r.Last(); !last.At.IsZero() {
		v.LastReload = &last
	}
	writeJSON(w, http.StatusOK, v)
}

// reload reloads the config now and answers with the outcome: 200 when it
// applied or was unchanged, 422 when it failed.
func (a *admin) reload(w http.ResponseWriter, _ *http.Request) {
	a.r.reload("admin API")
	last := a.r.Last()
	code := http.StatusOK
	if last.Result == "failed" {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, last)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
