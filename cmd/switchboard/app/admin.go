package app

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/certs"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
)

// admin is the HTTP listener: metrics, health, readiness and the admin API.
type admin struct {
	cfg config.HTTP
	// console is the web console, nil when off.
	console http.Handler
	eng     *engine.Engine
	ops     *operations
	log     *slog.Logger
	srv     *http.Server
}

// startAdmin listens on cfg.Listen and serves until stop is called, with
// the console if not nil, over TLS with the store's certificates when cfg.TLS
// is set. The listen address and token are read at start: changing them
// needs a restart; the certificates reload live.
func startAdmin(cfg config.HTTP, ops *operations, console http.Handler, store *certs.Store, log *slog.Logger) (*admin, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	a := &admin{cfg: cfg, eng: ops.eng, ops: ops, log: log, console: console}
	a.serve(ln, store)
	log.Info("http listening", "addr", ln.Addr().String(), "tls", cfg.TLS, "admin", cfg.Token != "")
	return a, nil
}

// serve serves on ln in the background, over TLS when a.cfg.TLS is set.
// Each handshake takes the certificate the store holds when it starts,
// so a renewed one is served without a restart. The listener is Go's
// TLS listener, not the store's Listen: net/http sees a *tls.Conn, bounds
// its handshake by ReadHeaderTimeout and fills in each request's TLS
// state, from which the console sets its cookie's Secure flag.
func (a *admin) serve(ln net.Listener, store *certs.Store) {
	if a.cfg.TLS {
		ln = tls.NewListener(ln, store.ServerConfig())
	}
	a.srv = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http listener stopped", "error", err)
		}
	}()
}

func (a *admin) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

func (a *admin) routes() http.Handler {
	mux := http.NewServeMux()
	if a.ops.svc.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.ops.svc.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", a.ready)
	mux.Handle("/admin/", a.guard(adminHandler(a.ops, "admin API")))
	if a.console != nil {
		mux.Handle("/console/", a.console)
	}
	if a.cfg.Pprof {
		mux.Handle("/debug/pprof/", a.guard(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", a.guard(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", a.guard(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", a.guard(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", a.guard(http.HandlerFunc(pprof.Trace)))
	}
	return mux
}

// guard lets a request through only with the configured bearer token.
func (a *admin) guard(h http.Handler) http.Handler {
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
		h.ServeHTTP(w, req)
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
