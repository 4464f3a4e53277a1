package logs

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func TestFormatAndLevelFollowApply(t *testing.T) {
	var out stagetest.Logs
	l := New(&out)
	stage := l.With("stage", "registrar") // kept across Applies, as stages keep theirs
	tests := []struct {
		level, format, override string
		logDebug, logInfo       bool // whether each record must appear
		want                    string
	}{
		{"info", "text", "", false, true, `level=INFO msg=hello stage=registrar`},
		{"info", "json", "", false, true, `"msg":"hello","stage":"registrar"`},
		{"debug", "text", "", true, true, `level=DEBUG msg=hello stage=registrar`},
		{"debug", "text", "error", false, false, ``},
		{"info", "text", "debug", true, true, `level=DEBUG`}, // the override outlives Apply
		{"warn", "text", "", false, false, ``},               // "" drops the override
	}
	for i, tc := range tests {
		if err := l.Apply(config.Log{Output: "stderr", Level: tc.level, Format: tc.format}, ""); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if err := l.SetLevel(tc.override); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		before := len(out.String())
		stage.Debug("hello")
		stage.Info("hello")
		got := out.String()[before:]
		if n := strings.Count(got, "hello"); n != btoi(tc.logDebug)+btoi(tc.logInfo) {
			t.Errorf("test %d: %d records, want debug %t info %t:\n%s", i, n, tc.logDebug, tc.logInfo, got)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("test %d: %q lacks %q", i, got, tc.want)
		}
		if l.Override() != tc.override {
			t.Errorf("test %d: override %q, want %q", i, l.Override(), tc.override)
		}
	}
	if err := l.SetLevel("loud"); err == nil {
		t.Error("SetLevel(loud): no error")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFileMovedAway follows logrotate without copytruncate: the file is
// renamed, and the next write after statEvery creates the path again.
func TestFileMovedAway(t *testing.T) {
	old := statEvery
	statEvery = 0
	defer func() { statEvery = old }()
	dir := t.TempDir()
	l := New(os.Stderr)
	defer l.Close()
	if err := l.Apply(config.Log{Output: "file", File: "sb.log", Level: "info", Format: "text"}, dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sb.log")
	l.Info("first")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Info("second")
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Info("third")
	for name, want := range map[string]string{".1": "msg=first", ".2": "msg=second", "": "msg=third"} {
		data, err := os.ReadFile(path + name)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(data); strings.Count(got, "\n") != 1 || !strings.Contains(got, want) {
			t.Errorf("sb.log%s: %q, want one line with %s", name, got, want)
		}
	}
}

func TestDatagramOutputs(t *testing.T) {
	tests := []struct {
		output string
		want   []string
	}{
		{"syslog", []string{"<27>", " switchboard[", `]: level=ERROR msg="it broke" stage=forward`}},
		{"journald", []string{"PRIORITY=3\n", "SYSLOG_IDENTIFIER=switchboard\n", `MESSAGE=level=ERROR msg="it broke" stage=forward` + "\n"}},
	}
	for i, tc := range tests {
		sock := filepath.Join(t.TempDir(), "log.sock")
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		l := New(os.Stderr)
		if err := l.Apply(config.Log{Output: tc.output, Socket: sock, Level: "info", Format: "text"}, ""); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		l.With("stage", "forward").Error("it broke")
		_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		got := string(buf[:n])
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("test %d: %q lacks %q", i, got, w)
			}
		}
		if strings.Contains(got, "time=") {
			t.Errorf("test %d: %q has the time, which the receiver stamps", i, got)
		}
		_ = l.Close()
		_ = ln.Close()
	}
}

func TestJournalMultiline(t *testing.T) {
	var b bytes.Buffer
	journalFields(&b, 0, []byte("a\nb"))
	want := "PRIORITY=6\nSYSLOG_FACILITY=3\nSYSLOG_IDENTIFIER=switchboard\nMESSAGE\n\x03\x00\x00\x00\x00\x00\x00\x00a\nb\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestApplyKeepsOutputOnError(t *testing.T) {
	var out stagetest.Logs
	l := New(&out)
	err := l.Apply(config.Log{Output: "syslog", Socket: filepath.Join(t.TempDir(), "none"), Level: "info", Format: "text"}, "")
	if err == nil || !strings.Contains(err.Error(), "log: syslog:") {
		t.Fatalf("error %v, want log: syslog: ...", err)
	}
	l.Info("still here")
	if !strings.Contains(out.String(), "still here") {
		t.Errorf("the log left stderr: %q", out.String())
	}
}

// TestFailedReachesStderr: a failure that stops the process is written to
// stderr once, whether the log goes there or to a file.
func TestFailedReachesStderr(t *testing.T) {
	tests := []struct {
		output string
		inFile bool
	}{
		{"stderr", false},
		{"file", true},
	}
	for i, tc := range tests {
		var out stagetest.Logs
		l := New(&out)
		path := filepath.Join(t.TempDir(), "sb.log")
		c := config.Log{Output: tc.output}
		if tc.output == "file" {
			c.File = path
		}
		if err := l.Apply(c, ""); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		l.Failed("starting", os.ErrPermission)
		_ = l.Close()
		if n := strings.Count(out.String(), "permission denied"); n != 1 {
			t.Errorf("test %d (%s): stderr %q has the error %d times, want once", i, tc.output, out.String(), n)
		}
		logged, _ := os.ReadFile(path)
		if got := strings.Contains(string(logged), `msg=starting error="permission denied"`); got != tc.inFile {
			t.Errorf("test %d (%s): log file %q, want the error there: %v", i, tc.output, logged, tc.inFile)
		}
	}
}

// TestSwapLosesNoLine: records written while reloads move the log between
// two files all land in one of them; none goes to a file already closed.
func TestSwapLosesNoLine(t *testing.T) {
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")}
	l := New(&stagetest.Logs{})
	if err := l.Apply(config.Log{Output: "file", File: files[0]}, ""); err != nil {
		t.Fatal(err)
	}
	const writers, lines = 4, 500
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < lines; i++ {
				l.Info("line")
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 1; ; i++ {
		select {
		case <-done:
		default:
			if err := l.Apply(config.Log{Output: "file", File: files[i%2]}, ""); err != nil {
				t.Fatal(err)
			}
			continue
		}
		break
	}
	_ = l.Close()
	total := 0
	for _, f := range files {
		data, _ := os.ReadFile(f)
		total += strings.Count(string(data), "msg=line")
	}
	if total != writers*lines {
		t.Errorf("%d lines in the files, want %d", total, writers*lines)
	}
}
