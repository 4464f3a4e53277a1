package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// The login limit: past loginFailures failed logins from one address in
// loginWindow, logins from it get 429 until the window has passed.
const (
	loginFailures = 5
	loginWindow   = time.Minute
	cookieName    = "sb_session"
	maxSessions   = 1024
)

// session is one login: its CSRF token and when it ends.
type session struct {
	id      string
	csrf    string
	name    string // names the session in logs and the reload history
	expires time.Time
}

// sessions holds the logins in memory: a restart logs everyone out.
type sessions struct {
	mu   sync.Mutex
	ttl  time.Duration
	now  func() time.Time
	byID map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: map[string]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) start() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, ss := range s.byID {
		if !now.Before(ss.expires) {
			delete(s.byID, id)
		}
	}
	if len(s.byID) >= maxSessions {
		clear(s.byID) // a flood of logins with the token: start over
	}
	ss := &session{id: randomToken(), csrf: randomToken(), name: "console:" + randomToken()[:8], expires: now.Add(s.ttl)}
	s.byID[ss.id] = ss
	return ss
}

// get returns the live session of req's cookie, or nil.
func (s *sessions) get(req *http.Request) *session {
	c, err := req.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[c.Value]
	if ss == nil {
		return nil
	}
	if !s.now().Before(ss.expires) {
		delete(s.byID, c.Value)
		return nil
	}
	return ss
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// limiter counts failed logins by client address.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	fails  map[string][]time.Time
}

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

// recent returns the failures of addr within the window.
func (l *limiter) recent(addr string) []time.Time {
	cut := l.now().Add(-l.window)
	kept := l.fails[addr][:0]
	for _, t := range l.fails[addr] {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(l.fails, addr)
	} else {
		l.fails[addr] = kept
	}
	return kept
}

func (l *limiter) blocked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(addr)) >= l.max
}

func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 4096 {
		clear(l.fails)
	}
	l.fails[addr] = append(l.recent(addr), l.now())
}

func clientAddr(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// login checks the form's token and starts a session.
func (h *Handler) login(w http.ResponseWriter, req *http.Request) {
	addr := clientAddr(req)
	if h.logins.blocked(addr) {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many failed logins: wait a minute", http.StatusTooManyRequests)
		return
	}
	req.Body = http.MaxBytesReader(w, req.Body, 4096)
	token := req.PostFormValue("token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(h.opts.Token)) != 1 {
		h.logins.fail(addr)
		h.opts.Log.Warn("console login failed", "remote", addr)
		http.Redirect(w, req, "/console/login?failed=1", http.StatusSeeOther)
		return
	}
	ss := h.sessions.start()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: ss.id, Path: "/console/", HttpOnly: true,
		Secure: secure(req), SameSite: http.SameSiteStrictMode, Expires: ss.expires})
	h.opts.Log.Info("console login", "remote", addr, "session", ss.name)
	http.Redirect(w, req, "/console/", http.StatusSeeOther)
}

// logout ends the session; it needs the CSRF token as other changes do.
func (h *Handler) logout(w http.ResponseWriter, req *http.Request) {
	ss := h.sessions.get(req)
	if ss != nil {
		if !csrfOK(ss, req) {
			writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token")
			return
		}
		h.sessions.end(ss.id)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, Secure: secure(req), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, req, "/console/login", http.StatusSeeOther)
}

// csrfOK checks the X-CSRF-Token header (or, for the logout form, the
// csrf field) against the session's.
func csrfOK(ss *session, req *http.Request) bool {
	got := req.Header.Get("X-CSRF-Token")
	if got == "" && req.URL.Path == "/console/logout" {
		got = req.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}

// pageSession sends a request without a session to the login page.
func (h *Handler) pageSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if h.sessions.get(req) == nil {
			http.Redirect(w, req, "/console/login", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, req)
	})
}

type sessionKey struct{}

// apiSession answers 401 without a session, and 403 to a change without
// the session's CSRF token.
func (h *Handler) apiSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ss := h.sessions.get(req)
		if ss == nil {
			writeError(w, http.StatusUnauthorized, "no session: log in at /console/login")
			return
		}
		switch req.Method {
		case http.MethodGet, http.MethodHead:
		default:
			if !csrfOK(ss, req) {
				writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token")
				return
			}
		}
		next.ServeHTTP(w, withSession(req, ss))
	})
}
