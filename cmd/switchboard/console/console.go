// Package console is the web console of the admin HTTP listener: a login
// behind the admin token, then pages (embedded, no CDN) and a JSON API
// with server-sent events over the admin operations. Its contract with
// the pages is docs/console.md.
package console

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"
)

//go:embed assets
var assets embed.FS

// CSP is the Content-Security-Policy of every answer: no inline script or
// style, nothing from another origin, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Options configure the console.
type Options struct {
	// Token is the admin token a login must give.
	Token string
	// Listen is the admin listener's address; TLS says it serves HTTPS.
	// The console refuses to run on an address other than loopback
	// without TLS: the token and the session would cross the network in
	// the clear.
	Listen string
	TLS    bool
	// Backend runs the operations.
	Backend Backend
	Log     *slog.Logger
	// SessionTTL is how long a session lasts after its login; 0 is 8 h.
	SessionTTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Handler serves the console under /console/.
type Handler struct {
	opts     Options
	sessions *sessions
	logins   *limiter
	mux      *http.ServeMux
	static   http.Handler
}

// ErrNeedsTLS is New's refusal to serve the console in the clear on an
// address other than loopback.
var ErrNeedsTLS = errors.New("the console needs TLS when [http] listen is not on loopback: listen on 127.0.0.1 (and reach it through an SSH tunnel or a TLS proxy), or set http.tls = true with the certificate of [tls]")

// New returns the console's handler, or ErrNeedsTLS.
func New(opts Options) (*Handler, error) {
	if !opts.TLS && !Loopback(opts.Listen) {
		return nil, ErrNeedsTLS
	}
	if opts.Token == "" {
		return nil, errors.New("the console needs an admin token")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, sessions: newSessions(opts.SessionTTL, opts.Now), logins: newLimiter(loginFailures, loginWindow, opts.Now)}
	h.static = http.StripPrefix("/console/assets/", http.FileServerFS(sub))
	h.mux = h.routes(sub)
	return h, nil
}

// Loopback reports whether the host of a listen address is a loopback
// address (or localhost).
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h *Handler) routes(sub fs.FS) *http.ServeMux {
	mux := http.NewServeMux()
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			data, err := fs.ReadFile(sub, name)
			if err != nil {
				http.Error(w, "missing page", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(data)
		}
	}
	mux.HandleFunc("GET /console/login", page("login.html"))
	mux.HandleFunc("POST /console/login", h.login)
	mux.HandleFunc("POST /console/logout", h.logout)
	mux.Handle("GET /console/assets/", h.static)
	mux.Handle("GET /console/{$}", h.pageSession(page("index.html")))
	mux.Handle("/console/api/", h.apiSession(h.api()))
	return mux
}

// ServeHTTP sets the security headers on every answer and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if secure(req) {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	h.mux.ServeHTTP(w, req)
}

// secure reports whether req came over TLS: its cookie is then Secure.
// The request's own TLS state decides, so that a listener the options
// misdescribe never sends a Secure cookie over plain HTTP, nor a plain
// one over HTTPS.
func secure(req *http.Request) bool {
	return req.TLS != nil
}

// writeJSON writes v as JSON. Go's encoder escapes <, > and & in strings,
// so a value from SIP never reads as markup even where it is misused.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
