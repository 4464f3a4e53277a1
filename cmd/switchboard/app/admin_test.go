package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/logs"
	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

const token = "0123456789abcdef-token"

func newAdmin(t *testing.T, tok string) (*httptest.Server, string, *pipeline.Services) {
	t.Helper()
	ops, path := newOps(t)
	a := &admin{cfg: config.HTTP{Token: tok}, eng: ops.eng, ops: ops, log: ops.r.log}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(srv.Close)
	return srv, path, ops.svc
}

// newOps returns the admin operations of an engine running goodConfig,
// and the config file's path.
func newOps(t *testing.T) (*operations, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(goodConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	store := location.NewMemory()
	svc := &pipeline.Services{Location: store, Log: log, Traces: &pipeline.TraceUsers{}}
	eng, err := engine.New(svc, log, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Shutdown(context.Background()) })
	svc.Metrics = metrics.New(gauges(store, svc, eng))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(cfg, svc)
	if err != nil {
		t.Fatal(err)
	}
	eng.Use(p)
	svc.Metrics.Config(cfg.Hash)
	r := &reloader{path: path, listen: cfg.Server.Listen, file: cfg.Server.Listen, store: cfg.Store, http: cfg.HTTP, linger: cfg.Server.Linger, eng: eng, svc: svc, log: log, hash: cfg.Hash}
	return &operations{eng: eng, svc: svc, r: r, logs: logs.New(io.Discard)}, path
}

func get(t *testing.T, method, url, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestAdmin(t *testing.T) {
	srv, path, svc := newAdmin(t, token)
	now := time.Now()
	for _, aor := range []string{"alice", "bob"} {
		svc.Location.Update(aor, now, func([]location.Binding) ([]location.Binding, error) {
			return []location.Binding{{Contact: "sip:" + aor + "@192.0.2.1", Expires: now.Add(time.Hour), CallID: "c", CSeq: 1, NAT: aor == "bob", UserAgent: "SIPp/" + aor}}, nil
		})
	}
	tests := []struct {
		method, path, tok string
		code              int
		want              []string
	}{
		{"GET", "/health", "", 200, []string{`"ok"`}},
		{"GET", "/ready", "", 200, []string{`"ready"`}},
		{"GET", "/metrics", "", 200, []string{"switchboard_registrations 2", "switchboard_transactions_in_flight 0", "switchboard_overloaded 0", "switchboard_overload_refused_total 0", "switchboard_udp_held_back_total 0", "go_goroutines", "switchboard_config_info"}},
		{"GET", "/admin/registrations", "", 401, []string{"missing or wrong token"}},
		{"GET", "/admin/registrations", "wrong-token-wrong-token", 401, nil},
		{"GET", "/admin/registrations", token, 200, []string{`"aor": "alice"`, `"aor": "bob"`, `"contact": "sip:alice@192.0.2.1"`}},
		{"GET", "/admin/registrations?aor=bob", token, 200, []string{`"aor": "bob"`, `"nat": true`, `"user_agent": "SIPp/bob"`}},
		{"GET", "/admin/calls", token, 200, []string{"[]"}},
		{"GET", "/admin/config", token, 200, []string{`"hash"`, `stage 1 (registrar)`}},
		{"POST", "/admin/reload", token, 200, []string{`"result": "unchanged"`}},
		{"GET", "/admin/reload", token, 405, nil},
		{"GET", "/admin/stats", token, 200, []string{`"messages": [`, `"stage": "1:registrar"`}},
		{"POST", "/admin/trace?user=alice&state=on", token, 200, []string{`"trace": [`, `"alice"`}},
		{"POST", "/admin/trace?user=alice&state=maybe", token, 400, []string{`state \"maybe\" is neither on nor off`}},
		{"POST", "/admin/log-level?level=debug", token, 200, []string{`"log_level": "debug"`, `"alice"`}},
		{"POST", "/admin/log-level?level=loud", token, 400, []string{`level \"loud\" is not one of`}},
		{"GET", "/admin/config", token, 200, []string{`"log_level": "debug"`, `"trace": [`, `"file_hash"`}},
		{"POST", "/admin/log-level?level=config", token, 200, []string{`"trace": [`}},
		{"POST", "/admin/trace?user=alice&state=off", token, 200, nil},
		{"GET", "/admin/config", token, 200, []string{`"overrides": {}`}},
		{"DELETE", "/admin/registrations?aor=bob&contact=sip:bob@192.0.2.9", token, 404, []string{`bob has no binding with contact sip:bob@192.0.2.9`}},
		{"DELETE", "/admin/registrations?aor=bob&contact=sip:bob@192.0.2.1", token, 200, []string{`"removed": 1`}},
		{"DELETE", "/admin/registrations?aor=bob", token, 404, []string{`bob has no bindings`}},
		{"DELETE", "/admin/registrations?aor=alice", "", 401, nil},
		{"GET", "/admin/registrations", token, 200, []string{`"aor": "alice"`}},
		{"POST", "/admin/forwarding?aor=alice&busy=bob&no_answer=sip:vm@192.0.2.5&no_answer_after=15", token, 200, []string{`"aor": "alice"`, `"busy": "bob"`, `"no_answer": "sip:vm@192.0.2.5"`, `"no_answer_after": 15`}},
		{"POST", "/admin/forwarding?aor=alice&busy=set:voicemail", token, 400, []string{`busy: unknown set \"voicemail\"`}},
		{"POST", "/admin/forwarding?aor=alice&sometimes=bob", token, 400, []string{`unknown kind \"sometimes\"`}},
		{"POST", "/admin/forwarding?aor=alice&busy=set:", token, 400, []string{`busy: target \"set:\" names no set`}},
		{"GET", "/admin/forwarding", token, 200, []string{`"busy": "bob"`}},
		{"POST", "/admin/forwarding?aor=alice", token, 200, []string{`[]`}},
		{"GET", "/admin/registrations", token, 200, []string{`"aor": "alice"`}},
	}
	for i, tc := range tests {
		code, body := get(t, tc.method, srv.URL+tc.path, tc.tok)
		if code != tc.code {
			t.Errorf("test %d: %s %s: %d, want %d: %s", i, tc.method, tc.path, code, tc.code, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("test %d: %s %s: body does not contain %q:\n%s", i, tc.method, tc.path, w, body)
			}
		}
		if tc.path == "/admin/registrations?aor=bob" && strings.Contains(body, "alice") {
			t.Errorf("test %d: the filter let alice through", i)
		}
		if i == len(tests)-1 && strings.Contains(body, "bob") {
			t.Errorf("test %d: bob is still registered after ctl unregister:\n%s", i, body)
		}
	}

	// A broken edit: the reload fails with the mistake, 422.
	if err := os.WriteFile(path, []byte(strings.Replace(goodConfig, "registrar", "registar", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, "POST", srv.URL+"/admin/reload", token)
	var out Outcome
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if code != 422 || out.Result != "failed" || len(out.Errors) != 1 || !strings.Contains(out.Errors[0], `stage 1 (registar): use: unknown stage type`) {
		t.Errorf("broken reload: %d %+v", code, out)
	}
	if _, body := get(t, "GET", srv.URL+"/metrics", ""); !strings.Contains(body, `switchboard_reloads_total{outcome="failed"} 1`) {
		t.Errorf("metrics do not count the failed reload:\n%s", body)
	}
}

func TestAdminWithoutToken(t *testing.T) {
	srv, _, _ := newAdmin(t, "")
	if code, body := get(t, "GET", srv.URL+"/admin/registrations", "anything"); code != 403 || !strings.Contains(body, "set http.token") {
		t.Errorf("%d %s", code, body)
	}
	if code, _ := get(t, "GET", srv.URL+"/health", ""); code != 200 {
		t.Errorf("health %d", code)
	}
}
