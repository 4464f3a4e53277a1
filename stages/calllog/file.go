package calllog

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reopener is implemented by shared values that write to a file: Reopen
// closes the file and opens its path again, so that a log rotated away (by
// logrotate, on SIGHUP) is followed by a new file at the same path.
type Reopener interface {
	Reopen() error
}

// flushDelay bounds how long a line stays in the buffer before it reaches
// the file.
const flushDelay = 200 * time.Millisecond

// bufferSize is the write buffer of an open log file.
const bufferSize = 64 << 10

// errClosed is returned by a write to a log file that was closed.
var errClosed = errors.New("the file is closed")

// fileState is what a preamble knows of the file it goes in front of.
type fileState struct {
	// Empty is true when the file has nothing in it yet.
	Empty bool
	// First is true for the first line written to the file since it was
	// opened for the first pipeline that holds it.
	First bool
	// Created is when it was opened (the process start, for the first
	// pipeline).
	Created time.Time
}

// logFile is an append-only file shared by every pipeline whose calllog
// stages write to its path: a value of pipeline.Services.Shared keyed by
// the absolute path, open while a pipeline holds it. Lines are buffered and
// flushed within flushDelay, on Reopen and on Close.
type logFile struct {
	path    string
	created time.Time
	log     *slog.Logger

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	size    int64 // bytes in the file, buffered ones included
	used    bool  // a line was written since the file was opened
	pending bool  // a flush is scheduled
	timer   *time.Timer
}

var (
	_ Reopener = (*logFile)(nil)
)

// openLogFile opens the file at path for appending, creating it.
func openLogFile(path string, log *slog.Logger) (*logFile, error) {
	f, size, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, created: time.Now(), log: log, f: f, w: bufio.NewWriterSize(f, bufferSize), size: size}, nil
}

// openAppend opens path for appending, creating it with mode 0644, and
// returns its size.
func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// write appends a line, after what preamble returns for the file as it
// stands (a header line, or ""); preamble may be nil. appendLine appends
// the line to the slice it is given: the free space of the file's buffer,
// so that a line that fits is written where it is made, without a copy or
// an allocation.
func (l *logFile) write(preamble func(fileState) string, appendLine func([]byte) []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("%s: %w", l.path, errClosed)
	}
	st := fileState{Empty: l.size == 0, First: !l.used, Created: l.created}
	l.used = true
	if preamble != nil {
		if p := preamble(st); p != "" {
			n, _ := l.w.WriteString(p)
			l.size += int64(n)
		}
	}
	n, err := l.w.Write(appendLine(l.w.AvailableBuffer()))
	l.size += int64(n)
	if err != nil {
		l.recoverLocked(err)
		return fmt.Errorf("%s: %w", l.path, err)
	}
	if !l.pending {
		l.pending = true
		if l.timer == nil {
			l.timer = time.AfterFunc(flushDelay, l.timedFlush)
		} else {
			l.timer.Reset(flushDelay)
		}
	}
	return nil
}

// timedFlush runs flushDelay after a write.
func (l *logFile) timedFlush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = false
	if l.f != nil {
		l.flushLocked()
	}
}

// Flush writes the buffered lines to the file.
func (l *logFile) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.flushLocked()
}

func (l *logFile) flushLocked() error {
	if l.w.Buffered() == 0 {
		return nil
	}
	if err := l.w.Flush(); err != nil {
		l.recoverLocked(err)
		return fmt.Errorf("%s: %w", l.path, err)
	}
	return nil
}

// recoverLocked reports a failed write and drops what was buffered: a
// bufio.Writer that failed refuses every later write, and a full disk
// must not silence the log for good.
func (l *logFile) recoverLocked(err error) {
	lost := l.w.Buffered()
	l.w.Reset(l.f)
	if st, serr := l.f.Stat(); serr == nil {
		l.size = st.Size()
	}
	if l.log != nil {
		l.log.Error("calllog: writing failed", "path", l.path, "error", err, "bytes_lost", lost)
	}
}

// Reopen flushes the file, opens its path again and closes the old one:
// after logrotate renamed the file, new lines go to a new file at the
// path. If the path cannot be opened, the old file stays in use and the
// error is returned. A closed file stays closed.
func (l *logFile) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	flushErr := l.flushLocked()
	f, size, err := openAppend(l.path)
	if err != nil {
		return errors.Join(flushErr, fmt.Errorf("reopening %s: %w", l.path, err))
	}
	old := l.f
	l.f, l.size = f, size
	l.w.Reset(f)
	return errors.Join(flushErr, old.Close())
}

// Close flushes and closes the file; the pool calls it when the last
// pipeline that holds the file releases it. It is safe to call more than
// once.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.pending = false
	}
	if l.f == nil {
		return nil
	}
	err := l.flushLocked()
	err = errors.Join(err, l.f.Close())
	l.f = nil
	return err
}
