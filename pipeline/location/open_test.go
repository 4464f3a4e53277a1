package location

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/internal/redistest"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(t.TempDir(), "abs.db")
	tests := []struct {
		cfg      config.Store
		wantType string
		wantFile string // for bolt
		wantErr  string
	}{
		{cfg: config.Store{}, wantType: "*location.Bolt", wantFile: filepath.Join(dir, "switchboard.db")},
		{cfg: config.Store{Backend: "bolt", Path: "data/reg.db"}, wantErr: "location store " + filepath.Join(dir, "data", "reg.db") + ": "},
		{cfg: config.Store{Backend: "bolt", Path: abs}, wantType: "*location.Bolt", wantFile: abs},
		{cfg: config.Store{Backend: "memory"}, wantType: "*location.Memory"},
		{cfg: config.Store{Backend: "redis", URL: "http://127.0.0.1"}, wantErr: "location store: redis url: "},
		{cfg: config.Store{Backend: "etcd"}, wantErr: `location store: backend "etcd" is not one of memory, bolt, redis`},
	}
	for i, tc := range tests {
		s, err := Open(tc.cfg, dir)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("test %d: error %v, want it to start with %q", i, err, tc.wantErr)
			}
			if s != nil {
				t.Errorf("test %d: store %#v with an error, want nil", i, s)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if got := typeName(s); got != tc.wantType {
			t.Errorf("test %d: store is %s, want %s", i, got, tc.wantType)
		}
		s.Close()
		if tc.wantFile != "" {
			if _, err := os.Stat(tc.wantFile); err != nil {
				t.Errorf("test %d: %v", i, err)
			}
		}
	}
}

func TestOpenRedis(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(config.Store{Backend: "redis", URL: srv.URL()}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, ok := s.(*Redis)
	if !ok {
		t.Fatalf("store is %s, want *location.Redis", typeName(s))
	}
	if r.prefix != config.DefaultStorePrefix {
		t.Errorf("prefix %q, want the default %q", r.prefix, config.DefaultStorePrefix)
	}
}

func typeName(s Store) string {
	switch s.(type) {
	case *Bolt:
		return "*location.Bolt"
	case *Memory:
		return "*location.Memory"
	case *Redis:
		return "*location.Redis"
	}
	return "something else"
}

// TestStoreConfig checks the [store] section's defaults and validation,
// here where the backends it names live.
func TestStoreConfig(t *testing.T) {
	tests := []struct {
		in   config.Store
		want config.Store // after Defaults
		errs []string
	}{
		{
			in:   config.Store{},
			want: config.Store{Backend: "bolt", Path: "switchboard.db"},
		},
		{
			in:   config.Store{Backend: "memory"},
			want: config.Store{Backend: "memory"},
		},
		{
			in:   config.Store{Backend: "redis", URL: "redis://127.0.0.1:6379/0"},
			want: config.Store{Backend: "redis", URL: "redis://127.0.0.1:6379/0", Prefix: "switchboard:"},
		},
		{
			in:   config.Store{Backend: "redis", URL: "unix:///run/redis/redis.sock", Prefix: "pbx1:"},
			want: config.Store{Backend: "redis", URL: "unix:///run/redis/redis.sock", Prefix: "pbx1:"},
		},
		{
			in:   config.Store{Backend: "Redis"},
			want: config.Store{Backend: "Redis"},
			errs: []string{`backend: "Redis" is not one of memory, bolt, redis`},
		},
		{
			in:   config.Store{Backend: "redis"},
			want: config.Store{Backend: "redis", Prefix: "switchboard:"},
			errs: []string{"url: missing: the redis backend needs a URL such as"},
		},
		{
			in:   config.Store{Backend: "redis", URL: "http://user:secret@127.0.0.1:6379"},
			want: config.Store{Backend: "redis", URL: "http://user:secret@127.0.0.1:6379", Prefix: "switchboard:"},
			errs: []string{`url: "http://user:xxxxx@127.0.0.1:6379" is not a URL such as`},
		},
		{
			in:   config.Store{Backend: "redis", URL: "redis:///0", Path: "x.db"},
			want: config.Store{Backend: "redis", URL: "redis:///0", Path: "x.db", Prefix: "switchboard:"},
			errs: []string{"path: only the bolt backend uses a file, not redis", `url: "redis:///0" has no host`},
		},
		{
			in:   config.Store{Backend: "bolt", URL: "redis://x", Prefix: "p:"},
			want: config.Store{Backend: "bolt", Path: "switchboard.db", URL: "redis://x", Prefix: "p:"},
			errs: []string{"url: only the redis backend uses a URL, not bolt", "prefix: only the redis backend uses a key prefix, not bolt"},
		},
	}
	for i, tc := range tests {
		s := tc.in
		s.Defaults()
		if s != tc.want {
			t.Errorf("test %d: after Defaults %+v, want %+v", i, s, tc.want)
		}
		errs := s.Validate()
		if len(errs) != len(tc.errs) {
			t.Errorf("test %d: errors %v, want %d", i, errs, len(tc.errs))
			continue
		}
		for j, err := range errs {
			if !strings.HasPrefix(err.Error(), tc.errs[j]) {
				t.Errorf("test %d: error %d %q, want it to start with %q", i, j, err, tc.errs[j])
			}
		}
	}
}

// TestOpenVanished opens a bolt store, which leaves its marker, then
// empties or removes the file: Open refuses, naming both, and says how to
// recover; without the marker it starts an empty store.
func TestOpenVanished(t *testing.T) {
	tests := []struct {
		name   string
		lose   func(path string) error
		copied bool // a copy FILE.1 is there
		want   string
	}{
		{"empty", func(path string) error { return os.Truncate(path, 0) }, false, "is empty, but %[1]s.exists says a store was kept there: there is no copy of it to restore; remove %[1]s.exists"},
		{"missing", os.Remove, false, "is missing, but %[1]s.exists says"},
		{"missing, copied", os.Remove, true, "is missing, but %[1]s.exists says a store was kept there: restore its newest copy (switchboard store check %[1]s.1, then cp %[1]s.1 %[1]s), or remove %[1]s.exists"},
	}
	for i, tc := range tests {
		dir := t.TempDir()
		cfg := config.Store{Backend: "bolt"}
		path := BoltPath(cfg, dir)
		s, err := Open(cfg, dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if tc.copied {
			if err := os.WriteFile(copyName(path, 1), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := tc.lose(path); err != nil {
			t.Fatal(err)
		}
		want := "location store " + path + " " + fmt.Sprintf(tc.want, path)
		if s, err := Open(cfg, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("test %d (%s): error %v, want one that says %q", i, tc.name, err, want)
			if s != nil {
				s.Close()
			}
		}
		if err := os.Remove(Marker(path)); err != nil {
			t.Fatal(err)
		}
		s, err = Open(cfg, dir)
		if err != nil {
			t.Errorf("test %d (%s): without the marker: %v", i, tc.name, err)
			continue
		}
		s.Close()
		if !exists(Marker(path)) {
			t.Errorf("test %d (%s): no marker after the store opened", i, tc.name)
		}
	}
}

// TestShared checks which stores say that several nodes share them: Redis
// alone, whose nodes ping only the bindings they hold.
func TestShared(t *testing.T) {
	bolt, err := NewBolt(filepath.Join(t.TempDir(), "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	redis, err := NewRedis("redis://127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer redis.Close()
	tests := []struct {
		name  string
		store Store
		want  bool
	}{
		{"memory", NewMemory(), false},
		{"bolt", bolt, false},
		{"redis", redis, true},
	}
	for i, tc := range tests {
		if got := Shared(tc.store); got != tc.want {
			t.Errorf("test %d (%s): Shared %v, want %v", i, tc.name, got, tc.want)
		}
	}
}
