// Package logs is the process's log: to stderr, a file, syslog or
// journald, as text or JSON. The output, format and level change on
// reload, and `switchboard ctl log-level` overrides the level until the
// process stops, across reloads.
package logs

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/switchboard-sip/switchboard/config"
)

// Logger is the process's logger. The *slog.Logger and every logger
// derived from it follow Apply and SetLevel.
type Logger struct {
	*slog.Logger
	root   *root
	stderr io.Writer

	mu sync.Mutex
	// dest is the output in force, its file resolved; format its format.
	dest   config.Log
	format string
	sink   io.Closer
	// level is [log] level; override, when set, is in force instead.
	level    slog.Level
	override string
}

// New returns a logger writing text to stderr at level info, until Apply.
func New(stderr io.Writer) *Logger {
	l := &Logger{root: &root{}, stderr: stderr, dest: config.Log{Output: "stderr"}, format: "text"}
	l.root.base.Store(&base{h: slog.NewTextHandler(stderr, nil)})
	l.Logger = slog.New(&handler{root: l.root})
	return l
}

// Apply puts c in force: its output (a file relative to dir unless
// absolute), format and level, unless a level override holds. When the
// output cannot be opened, the one in force stays and the error says why.
func (l *Logger) Apply(c config.Log, dir string) error {
	if c.Output == "file" && !filepath.IsAbs(c.File) {
		c.File = filepath.Join(dir, c.File)
	}
	dest := config.Log{Output: c.Output, File: c.File, Socket: c.Socket}
	level, err := parseLevel(c.Level)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if dest != l.dest || c.Format != l.format {
		if err := l.open(dest, c.Format); err != nil {
			return err
		}
	}
	l.level = level
	if l.override == "" {
		l.root.level.Set(level)
	}
	return nil
}

// open swaps in a handler for dest and format, reusing the sink when only
// the format changed, and closes the sink it replaced once the records
// being written to it are out.
func (l *Logger) open(dest config.Log, format string) error {
	sink := l.sink
	if dest != l.dest {
		sink = nil
	}
	var h slog.Handler
	switch dest.Output {
	case "stderr":
		h = formatter(l.stderr, format, false)
	case "file":
		if sink == nil {
			f, err := openFile(dest.File)
			if err != nil {
				return fmt.Errorf("log: file: %w", err)
			}
			sink = f
		}
		h = formatter(sink.(io.Writer), format, false)
	case "syslog", "journald":
		if sink == nil {
			encode := syslogLine
			if dest.Output == "journald" {
				encode = journalFields
			}
			d, err := dialDatagram(dest.Socket, encode)
			if err != nil {
				return fmt.Errorf("log: %s: %w", dest.Output, err)
			}
			sink = d
		}
		line := &bytes.Buffer{}
		h = datagramHandler{d: sink.(*datagram), format: formatter(line, format, true), line: line}
	default:
		return fmt.Errorf("log: output: %q is not one of stderr, file, syslog, journald", dest.Output)
	}
	l.root.swap(&base{h: h})
	if l.sink != nil && l.sink != sink {
		if err := l.sink.Close(); err != nil {
			l.Warn("log: closing the previous output", "output", l.dest.Output, "error", err)
		}
	}
	l.sink, l.dest, l.format = sink, dest, format
	return nil
}

// formatter is a text or JSON handler on w; untimed leaves out the time,
// which syslog and journald stamp themselves.
func formatter(w io.Writer, format string, untimed bool) slog.Handler {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if untimed {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Failed logs a failure that stops the process, and writes it to stderr
// too when the log goes elsewhere: systemd's journal and the shell that
// ran the proxy read stderr, and a file or socket may not be watched.
func (l *Logger) Failed(msg string, err error) {
	l.Error(msg, "error", err)
	l.mu.Lock()
	elsewhere := l.dest.Output != "stderr"
	l.mu.Unlock()
	if elsewhere {
		fmt.Fprintf(l.stderr, "%s: %v\n", msg, err)
	}
}

// SetLevel overrides [log] level until the process stops; "" drops the
// override and puts the config's level back.
func (l *Logger) SetLevel(level string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if level == "" {
		l.override = ""
		l.root.level.Set(l.level)
		return nil
	}
	v, err := parseLevel(level)
	if err != nil {
		return err
	}
	l.override = strings.ToLower(level)
	l.root.level.Set(v)
	return nil
}

// Override returns the level override, or "" when the config's holds.
func (l *Logger) Override() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.override
}

// Reopen reopens the log file, if the output is one: logrotate's
// postrotate sends SIGHUP.
func (l *Logger) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.sink.(*file); ok {
		return f.Reopen()
	}
	return nil
}

// Close closes the file or socket the log writes to; later records go to
// stderr.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.root.swap(&base{h: formatter(l.stderr, l.format, false)})
	var err error
	if l.sink != nil {
		err = l.sink.Close()
	}
	l.sink, l.dest = nil, config.Log{Output: "stderr"}
	return err
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("level %q is not one of debug, info, warn, error", s)
}
