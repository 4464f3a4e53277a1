package stagetest

import (
	"bytes"
	"log/slog"
	"sync"
)

// Logs is a log that a test reads while the code under test writes it
// from other goroutines (a file watcher, say).
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Logger returns a text logger that writes to l.
func (l *Logs) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// Write appends p to the log.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
