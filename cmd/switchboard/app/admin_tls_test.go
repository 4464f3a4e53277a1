package app

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// remoteListen is an [http] listen address off loopback. The tests
// never bind it: the console decides from the configured address, and
// the listener they serve on is on 127.0.0.1.
const remoteListen = "192.0.2.10:9443"

// tlsAdmin serves the admin listener of cfg, console included, on
// 127.0.0.1 with the certificates of cfg's [tls] section watched as at
// run time. It returns the listener's address.
func tlsAdmin(t *testing.T, cfg *config.File, log *slog.Logger) string {
	t.Helper()
	ops, _ := newOps(t)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	store, err := openCerts(cfg, log, stop)
	if err != nil {
		t.Fatal(err)
	}
	httpCfg, web := startConsole(cfg, ops, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &admin{cfg: httpCfg, eng: ops.eng, ops: ops, log: log, console: web}
	a.serve(ln, store)
	t.Cleanup(a.stop)
	return ln.Addr().String()
}

// tlsConfig returns a [tls] section with a pair for name that ca issued,
// written in dir.
func tlsConfig(t *testing.T, ca *certstest.CA, dir, name string) config.TLS {
	t.Helper()
	tc := config.TLS{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), MinVersion: "1.2", HandshakeTimeout: config.Duration(time.Second)}
	writePair(t, ca, tc, name)
	return tc
}

func writePair(t *testing.T, ca *certstest.CA, tc config.TLS, name string) {
	t.Helper()
	c, k := ca.Issue(t, time.Now().Add(24*time.Hour), name)
	certstest.Write(t, tc.Cert, c)
	certstest.Write(t, tc.Key, k)
}

// TestConsoleOverTLS serves the console off loopback over TLS: a login
// works and its cookie is Secure, a client older than TLS 1.2 is refused,
// and a certificate written over the old one is served without a restart.
func TestConsoleOverTLS(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	cfg := &config.File{Path: filepath.Join(dir, "config.toml")}
	cfg.HTTP = config.HTTP{Listen: remoteListen, TLS: true, Token: token}
	cfg.TLS = tlsConfig(t, ca, dir, "console.example.org")
	logs := &stagetest.Logs{}
	addr := tlsAdmin(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if want := "url=https://" + remoteListen + "/console/"; !strings.Contains(logs.String(), want) {
		t.Errorf("startup log has no %q:\n%s", want, logs)
	}

	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "console.example.org"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://" + addr
	resp, err := client.PostForm(base+"/console/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" || len(cookies) != 1 {
		t.Fatalf("login: %d to %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	if !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Errorf("session cookie over TLS: %+v, want Secure and HttpOnly", cookies[0])
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS")
	}
	req, _ := http.NewRequest("GET", base+"/console/api/session", nil)
	req.AddCookie(cookies[0])
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("session after login: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	old := &tls.Config{RootCAs: ca.Pool(), ServerName: "console.example.org", MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was served: the minimum is 1.2")
	}

	writePair(t, ca, cfg.TLS, "renewed.example.org")
	deadline := time.Now().Add(10 * time.Second)
	for presented(t, ca, addr) != "renewed.example.org" {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// presented returns the name of the certificate the listener at addr
// presents, verified against ca.
func presented(t *testing.T, ca *certstest.CA, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err != nil {
		t.Fatal(err)
	}
	return leaf.DNSNames[0]
}

// TestConsoleOffWithoutTLS checks that a listener off loopback without
// TLS serves the rest but not the console, and says why in its log.
func TestConsoleOffWithoutTLS(t *testing.T) {
	cfg := &config.File{Path: "config.toml"}
	cfg.HTTP = config.HTTP{Listen: "0.0.0.0:9060", Token: token}
	logs := &stagetest.Logs{}
	addr := tlsAdmin(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if !strings.Contains(logs.String(), "console off") || !strings.Contains(logs.String(), "the console needs TLS") {
		t.Errorf("no clear log line:\n%s", logs)
	}
	for path, want := range map[string]int{"/console/": 404, "/console/login": 404, "/health": 200} {
		if code, _ := get(t, "GET", "http://"+addr+path, ""); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
}

// TestCheckConsole checks validate's warning, at http.listen's line, for
// a console that cannot start.
func TestCheckConsole(t *testing.T) {
	const stage = "[[stage]]\nuse = 'forward'\n"
	const certs = "[tls]\ncert = 'c.pem'\nkey = 'k.pem'\n"
	tests := []struct {
		toml, want string
	}{
		{stage, ""},
		{"[http]\nlisten = '127.0.0.1:9060'\n" + stage, ""},
		{"[http]\nlisten = 'localhost:9060'\n" + stage, ""},
		{"[http]\nlisten = '[::1]:9060'\n" + stage, ""},
		{"[http]\nlisten = '0.0.0.0:9060'\n" + stage, "c.toml:2:1: http: listen: warning: the console stays off: the console needs TLS"},
		{"[http]\n\nlisten = ':9060'\n" + stage, "c.toml:3:1: http: listen: warning: the console stays off"},
		{"[http]\nlisten = '192.0.2.10:9443'\ntls = true\n" + certs + stage, ""},
	}
	for i, tc := range tests {
		cfg, err := config.Parse("c.toml", []byte(tc.toml))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		var out bytes.Buffer
		checkConsole(cfg, &out)
		if (out.Len() == 0) != (tc.want == "") || !strings.Contains(out.String(), tc.want) {
			t.Errorf("test %d: %q, want %q", i, out.String(), tc.want)
		}
	}
}
