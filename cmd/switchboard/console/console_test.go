package console

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const token = "0123456789abcdef-token"

// fake is a Backend with one call whose From holds markup.
type fake struct{ saved string }

func (*fake) Overview() Overview { return Overview{Responses: map[string]int{"2xx": 1}} }
func (*fake) Registrations(q string) (any, error) {
	return []map[string]string{{"aor": "sip:alice@x", "q": q}}, nil
}
func (*fake) Unregister(aor, _ string) (any, error) {
	if aor == "" {
		return nil, errors.New("no aor")
	}
	return map[string]any{"aor": aor, "removed": 1}, nil
}
func (*fake) Calls() (active, recent []Call) {
	return nil, []Call{{CallID: "c1", From: `"<script>alert(1)</script>" <sip:a@x>`, Outcome: "busy", Start: time.Unix(1, 0)}}
}
func (*fake) Call(id string) (CallDetail, bool) { return CallDetail{}, id == "c1" }
func (*fake) Config() ConfigView                { return ConfigView{Path: "config.toml", Hash: "h1"} }
func (*fake) Validate(text string) []ConfigError {
	if strings.Contains(text, "broken") {
		return []ConfigError{{Line: 2, Column: 1, Message: "broken"}}
	}
	return nil
}
func (f *fake) Save(text, hash, session string) (SaveResult, error) {
	if hash != "h1" {
		return SaveResult{}, ErrChanged
	}
	f.saved = session
	return SaveResult{Saved: true, Outcome: "applied"}, nil
}
func (*fake) Diff() Diff        { return Diff{} }
func (*fake) Reloads() []Reload { return nil }

type harness struct {
	t   *testing.T
	h   *Handler
	now time.Time
	b   *fake
}

func newHarness(t *testing.T) *harness {
	hs := &harness{t: t, now: time.Unix(1700000000, 0), b: &fake{}}
	h, err := New(Options{Token: token, Listen: "127.0.0.1:8080", Backend: hs.b, Now: func() time.Time { return hs.now }, SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	hs.h = h
	return hs
}

func (hs *harness) do(method, path, body string, hdr map[string]string) *http.Response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.9:4000"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, req)
	return w.Result()
}

// login returns the session cookie and the CSRF token.
func (hs *harness) login() (cookie, csrf string) {
	resp := hs.do("POST", "/console/login", url.Values{"token": {token}}.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		hs.t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := resp.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.Name != cookieName {
		hs.t.Errorf("cookie: %+v", c)
	}
	cookie = c.Name + "=" + c.Value
	resp = hs.do("GET", "/console/api/session", "", map[string]string{"Cookie": cookie})
	var s struct{ CSRF string }
	_ = json.NewDecoder(resp.Body).Decode(&s)
	if s.CSRF == "" {
		hs.t.Fatal("no CSRF token")
	}
	return cookie, s.CSRF
}

func TestNoSession(t *testing.T) {
	hs := newHarness(t)
	tests := []struct {
		method, path string
		want         int
		location     string
	}{
		{"GET", "/console/", http.StatusSeeOther, "/console/login"},
		{"GET", "/console/api/overview", http.StatusUnauthorized, ""},
		{"GET", "/console/api/events", http.StatusUnauthorized, ""},
		{"POST", "/console/api/config/save", http.StatusUnauthorized, ""},
		{"GET", "/console/login", http.StatusOK, ""},
	}
	for i, tc := range tests {
		resp := hs.do(tc.method, tc.path, "{}", nil)
		if resp.StatusCode != tc.want || resp.Header.Get("Location") != tc.location {
			t.Errorf("test %d: %s %s: %d to %q, want %d", i, tc.method, tc.path, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
		if resp.Header.Get("Content-Security-Policy") != CSP {
			t.Errorf("test %d: CSP %q", i, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

func TestCSRF(t *testing.T) {
	hs := newHarness(t)
	cookie, csrf := hs.login()
	body := `{"text": "x", "hash": "h1"}`
	tests := []struct {
		header map[string]string
		want   int
	}{
		{map[string]string{"Cookie": cookie}, http.StatusForbidden},
		{map[string]string{"Cookie": cookie, "X-CSRF-Token": "wrong"}, http.StatusForbidden},
		{map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf}, http.StatusOK},
	}
	for i, tc := range tests {
		resp := hs.do("POST", "/console/api/config/save", body, tc.header)
		if resp.StatusCode != tc.want {
			t.Errorf("test %d: %d, want %d", i, resp.StatusCode, tc.want)
		}
	}
	if !strings.HasPrefix(hs.b.saved, "console:") {
		t.Errorf("the save was made by %q, not the session", hs.b.saved)
	}
	resp := hs.do("POST", "/console/api/config/save", `{"text": "x", "hash": "old"}`, map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("a stale hash: %d, want 409", resp.StatusCode)
	}
}

func TestEscapedFromSIP(t *testing.T) {
	hs := newHarness(t)
	cookie, _ := hs.login()
	resp := hs.do("GET", "/console/api/calls", "", map[string]string{"Cookie": cookie})
	data, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(data), "<script>") || !strings.Contains(string(data), `\u003cscript\u003e`) {
		t.Errorf("markup from SIP is not escaped: %s", data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}

func TestSessionExpires(t *testing.T) {
	hs := newHarness(t)
	cookie, _ := hs.login()
	if resp := hs.do("GET", "/console/api/overview", "", map[string]string{"Cookie": cookie}); resp.StatusCode != http.StatusOK {
		t.Fatalf("with a session: %d", resp.StatusCode)
	}
	hs.now = hs.now.Add(time.Hour)
	if resp := hs.do("GET", "/console/api/overview", "", map[string]string{"Cookie": cookie}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the session's hour: %d, want 401", resp.StatusCode)
	}
}

func TestLoginRateLimit(t *testing.T) {
	hs := newHarness(t)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for i := 0; i < loginFailures; i++ {
		if resp := hs.do("POST", "/console/login", "token=wrong", form); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login?failed=1" {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	// Even the right token waits now.
	if resp := hs.do("POST", "/console/login", "token="+token, form); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("past the limit: %d, want 429", resp.StatusCode)
	}
	hs.now = hs.now.Add(loginWindow + time.Second)
	hs.login()
}

func TestLogout(t *testing.T) {
	hs := newHarness(t)
	cookie, csrf := hs.login()
	if resp := hs.do("POST", "/console/logout", "", map[string]string{"Cookie": cookie}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d", resp.StatusCode)
	}
	hs.do("POST", "/console/logout", "", map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf})
	if resp := hs.do("GET", "/console/api/overview", "", map[string]string{"Cookie": cookie}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}

func TestNeedsTLS(t *testing.T) {
	tests := []struct {
		listen string
		tls    bool
		ok     bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"192.0.2.1:8080", false, false},
		{"0.0.0.0:8443", true, true},
	}
	for i, tc := range tests {
		_, err := New(Options{Token: token, Listen: tc.listen, TLS: tc.tls, Backend: &fake{}})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrNeedsTLS)) {
			t.Errorf("test %d: %s: %v", i, tc.listen, err)
		}
	}
}

// TestSecureCookie checks that the session cookie is Secure, and HSTS
// sent, exactly when the request came over TLS, whatever the options say.
func TestSecureCookie(t *testing.T) {
	for i, overTLS := range []bool{false, true} {
		hs := newHarness(t)
		req := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if overTLS {
			req.TLS = &tls.ConnectionState{HandshakeComplete: true}
		}
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, req)
		resp := w.Result()
		cookies := resp.Cookies()
		if len(cookies) != 1 || cookies[0].Secure != overTLS {
			t.Errorf("test %d: over TLS %v: cookies %+v", i, overTLS, cookies)
		}
		if hsts := resp.Header.Get("Strict-Transport-Security") != ""; hsts != overTLS {
			t.Errorf("test %d: over TLS %v: HSTS %v", i, overTLS, hsts)
		}
	}
}

func TestAssets(t *testing.T) {
	hs := newHarness(t)
	cookie, _ := hs.login()
	for _, path := range []string{"/console/", "/console/login"} {
		resp := hs.do("GET", path, "", map[string]string{"Cookie": cookie})
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
