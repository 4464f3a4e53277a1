package prefix

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func value(f *File, number string) string {
	e, _ := f.Table().Longest(number)
	return e.Value
}

// TestFileReloads edits a real file in a temporary folder: in place, by a
// rename over it (as editors save) and with a mistake, which keeps the
// table in force and logs the file and line.
func TestFileReloads(t *testing.T) {
	for _, ext := range []string{".csv", ".toml"} {
		t.Run(ext, func(t *testing.T) {
			row := func(k, v string) string {
				if ext == ".csv" {
					return k + "," + v + "\n"
				}
				return `"` + k + `" = "` + v + `"` + "\n"
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "routes"+ext)
			write := func(data string) {
				t.Helper()
				if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(row("09", "mobile"))
			var logs stagetest.Logs
			f := NewFile(path, logs.Logger())
			if err := f.Load(nil); err != nil {
				t.Fatal(err)
			}
			if err := f.Watch(); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := value(f, "0903123456"); got != "mobile" {
				t.Fatalf("before any edit: %q", got)
			}

			// An edit in place.
			write(row("09", "mobile") + row("0903", "orange"))
			eventually(t, "the edit in place", func() bool { return value(f, "0903123456") == "orange" })

			// A new file renamed over it.
			tmp := filepath.Join(dir, "routes.new")
			if err := os.WriteFile(tmp, []byte(row("09", "mobile")+row("0903", "telekom")), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the file renamed over it", func() bool { return value(f, "0903123456") == "telekom" })

			// A broken edit: the table stays, the log names file and line.
			write(row("09", "mobile") + row("0903", "telekom") + row("09x", "broken"))
			eventually(t, "the failure logged", func() bool { return strings.Contains(logs.String(), "outcome=failed") })
			if want := path + `:3: \"09x\" is not a number`; !strings.Contains(logs.String(), want) {
				t.Errorf("the log does not name %s:\n%s", want, logs.String())
			}
			if got := value(f, "0903123456"); got != "telekom" {
				t.Errorf("after a broken edit: %q, want the table in force", got)
			}

			// Fixed again.
			write(row("0903", "fixed"))
			eventually(t, "the fixed file", func() bool { return value(f, "0903123456") == "fixed" })
			if got := value(f, "0904"); got != "" {
				t.Errorf("a row removed is still found: %q", got)
			}
		})
	}
}

func TestFileCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.csv")
	if err := os.WriteFile(path, []byte("09,mobile\n0903,nowhere\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	known := func(v string) error {
		if v != "mobile" {
			return errors.New("unknown set")
		}
		return nil
	}
	f := NewFile(path, slog.New(slog.DiscardHandler))
	err := f.Load(func(t *Table) error { return t.CheckValues(known) })
	if err == nil || err.Error() != path+`:2: "0903": unknown set` {
		t.Fatalf("error %v", err)
	}
	if f.Table() != nil {
		t.Errorf("a table that failed its check is in force")
	}
}
