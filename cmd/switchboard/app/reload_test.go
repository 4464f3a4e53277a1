package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/engine"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

const goodConfig = `[server]
domains = ["sip.test"]
[[stage]]
use = "registrar"
[[stage]]
use    = "rewrite"
when   = 'response.code == 200'
reason = "OK THANKS"
[[stage]]
use = "forward"
`

// testReloader writes content as config.toml in a new directory, runs an
// engine with the pipeline built from it, and returns a reloader of that
// file, with its log.
func testReloader(t *testing.T, content string) (*reloader, *stagetest.Logs) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &stagetest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	svc := &pipeline.Services{Location: location.NewMemory(), Log: log}
	eng, err := engine.New(svc, log, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Shutdown(context.Background()) })
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(cfg, svc)
	if err != nil {
		t.Fatal(err)
	}
	eng.Use(p)
	return &reloader{path: path, listen: cfg.Server.Listen, file: cfg.Server.Listen, store: cfg.Store, http: cfg.HTTP, linger: cfg.Server.Linger, eng: eng, svc: svc, log: log, hash: cfg.Hash}, logs
}

// TestReloadBadEdits checks that every kind of bad edit leaves the running
// pipeline in place and logs the mistake as a path.
func TestReloadBadEdits(t *testing.T) {
	r, logs := testReloader(t, goodConfig)
	eng, path, p := r.eng, r.path, r.eng.Pipeline()

	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"toml syntax error", "[server\ndomains = [", []string{"config.toml:1:8: toml: expected character ]"}},
		{"unknown key", strings.Replace(goodConfig, "domains", "domain", 1), []string{`config.toml:2:1: server: domain: unknown key, did you mean \"domains\"?`}},
		{"unknown stage", strings.Replace(goodConfig, `use = "registrar"`, `use = "registar"`, 1), []string{`config.toml:4:1: stage 1 (registar): use: unknown stage type \"registar\", did you mean \"registrar\"?`}},
		{"rule does not compile", strings.Replace(goodConfig, "response.code == 200", "respons.code == 200", 1), []string{`config.toml:7:1: stage 2 (rewrite): when: unknown name respons`}},
		{"rule of the wrong type", strings.Replace(goodConfig, "response.code == 200", "response.code", 1), []string{`config.toml:7:1: stage 2 (rewrite): when: expected bool, but got int`}},
		{"empty file", "", []string{"config.toml: the file is empty"}},
		{"half-written file", goodConfig[:len(goodConfig)/2], []string{"config.toml:6:10: toml: "}},
		{"stage key", strings.Replace(goodConfig, `reason = "OK THANKS"`, `reasn = "OK THANKS"`, 1), []string{`config.toml:8:1: stage 2 (rewrite): reasn: unknown key`}},
		{"server and stage", strings.Replace(strings.Replace(goodConfig, "domains", "domain", 1), "forward", "forwad", 1), []string{`config.toml:2:1: server: domain: unknown key`, `config.toml:10:1: stage 3 (forwad): use: unknown stage type`, "errors=2"}},
	}
	for i, tc := range tests {
		before := len(logs.String())
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		r.reload("test")
		out := logs.String()[before:]
		if eng.Pipeline() != p {
			t.Errorf("test %d (%s): the running pipeline was replaced", i, tc.name)
		}
		if got := r.Last(); got.Result != "failed" {
			t.Errorf("test %d (%s): outcome %q, want failed", i, tc.name, got.Result)
		}
		for _, w := range append(tc.want, "outcome=failed") {
			if !strings.Contains(out, w) {
				t.Errorf("test %d (%s): log does not say %q:\n%s", i, tc.name, w, out)
			}
		}
	}

	// A good edit applies; the same content again is unchanged.
	edited := strings.Replace(goodConfig, "OK THANKS", "OK", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload("test")
	if eng.Pipeline() == p || r.Last().Result != "applied" {
		t.Fatalf("good edit not applied: %+v", r.Last())
	}
	applied := eng.Pipeline()
	r.reload("test")
	if eng.Pipeline() != applied || r.Last().Result != "unchanged" {
		t.Errorf("same content: %+v", r.Last())
	}

	// A changed listen list needs a restart; the rest applies.
	if err := os.WriteFile(path, []byte("[server]\nlisten = ['udp://127.0.0.1:5999']\n"+strings.TrimPrefix(goodConfig, "[server]\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(logs.String())
	r.reload("test")
	if r.Last().Result != "applied" || !strings.Contains(logs.String()[before:], "needs_restart=server.listen") {
		t.Errorf("listen change: %+v\n%s", r.Last(), logs.String()[before:])
	}
	if strings.Contains(logs.String()[before:], "needs_restart=server.linger") {
		t.Errorf("linger unchanged, yet reported:\n%s", logs.String()[before:])
	}

	// So does a changed linger: sipgo's timers are process-wide.
	if err := os.WriteFile(path, []byte("[server]\nlinger = '20s'\n"+strings.TrimPrefix(goodConfig, "[server]\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	before = len(logs.String())
	r.reload("test")
	if r.Last().Result != "applied" || !strings.Contains(logs.String()[before:], "needs_restart=server.linger") {
		t.Errorf("linger change: %+v\n%s", r.Last(), logs.String()[before:])
	}
}

// TestReloadConsoleKept checks that a reload that leaves [http] as it was
// does not ask for a restart for it: console = false parses anew each
// time.
func TestReloadConsoleKept(t *testing.T) {
	withHTTP := goodConfig + "\n[http]\nconsole = false\n"
	r, logs := testReloader(t, withHTTP)
	if err := os.WriteFile(r.path, []byte(strings.Replace(withHTTP, "OK THANKS", "OK", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload("test")
	if r.Last().Result != "applied" || strings.Contains(logs.String(), "needs_restart=http") {
		t.Errorf("a stage edited, [http] kept: %+v\n%s", r.Last(), logs.String())
	}
	if err := os.WriteFile(r.path, []byte(strings.Replace(withHTTP, "console = false", "console = true", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload("test")
	if !strings.Contains(logs.String(), "needs_restart=http") {
		t.Errorf("console turned on: no restart asked for:\n%s", logs.String())
	}
}

// TestReloadMemoryLimit checks that server.memory_limit reaches Go's
// collector on reload, and that taking it out restores the setting the
// process started with.
func TestReloadMemoryLimit(t *testing.T) {
	percent, limit := startGC()
	r, logs := testReloader(t, goodConfig)
	gc := &collector{}
	defer gc.apply(0, 0, r.log)
	r.gc = gc
	path := r.path

	tests := []struct {
		name        string
		limit       string // server.memory_limit, "" for none
		wantPercent int
		wantLimit   int64
	}{
		{"set", "256MiB", -1, 256 << 20},
		{"changed", "320MiB", -1, 320 << 20},
		{"taken out", "", percent, limit},
		{"set again", "128MiB", -1, 128 << 20},
	}
	for i, tc := range tests {
		// A headroom of 4 MiB leaves Go's default GOGC (headroomPercent).
		content := strings.Replace(goodConfig, "[server]\n", "[server]\ngc_headroom = '4MiB'\n", 1)
		if tc.limit != "" {
			content = strings.Replace(content, "[server]\n", "[server]\nmemory_limit = '"+tc.limit+"'\n", 1)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		r.reload("test")
		if r.Last().Result != "applied" {
			t.Fatalf("test %d (%s): %+v", i, tc.name, r.Last())
		}
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		if p != tc.wantPercent {
			t.Errorf("test %d (%s): GOGC %d, want %d", i, tc.name, p, tc.wantPercent)
		}
		if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
			t.Errorf("test %d (%s): memory limit %d, want %d", i, tc.name, got, tc.wantLimit)
		}
		// A limit past any before has three quarters of it touched: the
		// runtime holds them (in use or free, not given back yet).
		if tc.limit == "256MiB" || tc.limit == "320MiB" {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if held := m.HeapSys - m.HeapReleased; held < uint64(tc.wantLimit)*3/4 {
				t.Errorf("test %d (%s): the runtime holds %d MiB of heap, want at least %d MiB", i, tc.name, held>>20, tc.wantLimit*3/4>>20)
			}
		}
	}
	if !strings.Contains(logs.String(), "memory_limit=128MiB") {
		t.Errorf("the log does not say the limit:\n%s", logs.String())
	}
	// A bad limit fails the reload and leaves the collector alone.
	if err := os.WriteFile(path, []byte(strings.Replace(goodConfig, "[server]\n", "[server]\nmemory_limit = '1MiB'\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload("test")
	if r.Last().Result != "failed" || debug.SetMemoryLimit(-1) != 128<<20 {
		t.Errorf("a bad limit: %+v, memory limit %d", r.Last(), debug.SetMemoryLimit(-1))
	}
}

// TestMemoryLimitWarnings checks the warnings of a memory_limit that
// replaces an environment setting or exceeds the memory there is.
func TestMemoryLimitWarnings(t *testing.T) {
	if avail, _ := availableMemory(); avail <= 0 {
		t.Skip("neither cgroup memory.max nor /proc/meminfo")
	}
	tests := []struct {
		name  string
		env   string // GOMEMLIMIT in the environment, "" for none
		limit config.Size
		want  []string
		not   []string
	}{
		{"plain", "", 256 << 20, []string{"memory_limit=256MiB"}, []string{"level=WARN"}},
		{"environment replaced", "2GiB", 256 << 20, []string{"replaces an environment setting", `env="GOMEMLIMIT=2GiB"`}, []string{"more than the memory available"}},
		{"more than there is", "", 1 << 50, []string{"more than the memory available", "available="}, nil},
	}
	for i, tc := range tests {
		if tc.env != "" {
			t.Setenv("GOMEMLIMIT", tc.env)
		} else {
			t.Setenv("GOMEMLIMIT", "")
		}
		t.Setenv("GOGC", "")
		var logs stagetest.Logs
		log := slog.New(slog.NewTextHandler(&logs, nil))
		gc := &collector{}
		gc.apply(tc.limit, 0, log)
		gc.apply(0, 0, log)
		for _, w := range tc.want {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("test %d (%s): the log lacks %q:\n%s", i, tc.name, w, logs.String())
			}
		}
		for _, w := range tc.not {
			if strings.Contains(logs.String(), w) {
				t.Errorf("test %d (%s): the log has %q:\n%s", i, tc.name, w, logs.String())
			}
		}
	}
}
