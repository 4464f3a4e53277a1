package logs

import (
	"os"
	"sync"
	"time"
)

// statEvery is how often a log file checks that its path still names the
// file it writes: logrotate without copytruncate moves the file away.
var statEvery = time.Second

// file is a log file that is reopened on Reopen (SIGHUP) and, on the next
// write, once its path no longer names the file open: moved or removed.
type file struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	checked time.Time
}

func openFile(path string) (*file, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &file{path: path, f: f, checked: time.Now()}, nil
}

func (w *file) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now := time.Now(); now.Sub(w.checked) >= statEvery {
		w.checked = now
		if w.moved() {
			_ = w.reopen()
		}
	}
	return w.f.Write(p)
}

// moved reports whether the path no longer names the open file.
func (w *file) moved() bool {
	onDisk, err := os.Stat(w.path)
	if err != nil {
		return true
	}
	open, err := w.f.Stat()
	return err != nil || !os.SameFile(onDisk, open)
}

// Reopen opens the path again, for logrotate's postrotate (SIGHUP).
func (w *file) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reopen()
}

// reopen keeps writing to the old file when the path cannot be opened.
func (w *file) reopen() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_ = w.f.Close()
	w.f = f
	return nil
}

func (w *file) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
