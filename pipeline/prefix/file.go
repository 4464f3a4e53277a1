package prefix

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the file must stay unchanged before it is loaded:
// editors and tools write it in several steps.
const debounce = 200 * time.Millisecond

// File is a table kept in step with its file. Watch reloads it whenever
// the file changes, without a reload of the config; an edit that does not
// load keeps the table in force, and is logged with its file and line.
// Lookups read the table in force without a lock.
type File struct {
	path  string
	log   *slog.Logger
	table atomic.Pointer[Table]

	mu    sync.Mutex
	data  []byte
	check func(*Table) error
	stop  chan struct{}
	done  chan struct{}
}

// NewFile returns the file at path, not yet loaded.
func NewFile(path string, log *slog.Logger) *File {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &File{path: path, log: log}
}

// Path returns the file's absolute name.
func (f *File) Path() string { return f.path }

// Table returns the table in force; nil before the first Load.
func (f *File) Table() *Table { return f.table.Load() }

// Load reads the file, checks it with check (besides its format: the
// values a stage accepts), and puts it in force; check stays for the
// reloads that follow. On an error the table in force stays.
func (f *File) Load(check func(*Table) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check = check
	_, err := f.load(true)
	return err
}

// load reads the file into force, reporting whether it changed; unless
// always, a file whose content is the same is not read again.
func (f *File) load(always bool) (bool, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, err
	}
	if !always && f.table.Load() != nil && bytes.Equal(data, f.data) {
		return false, nil
	}
	t, err := Read(f.path, data)
	if err == nil && f.check != nil {
		if err = f.check(t); err != nil {
			err = Located(f.path, err)
		}
	}
	if err != nil {
		return false, err
	}
	f.data = data
	f.table.Store(t)
	return true, nil
}

// Watch reloads the table whenever its file changes, until Close. It
// watches the file's folder, so that a file replaced by a rename (as
// editors save) is seen as well as one written in place.
func (f *File) Watch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(f.path)); err != nil {
		w.Close()
		return err
	}
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go f.watch(w)
	return nil
}

func (f *File) watch(w *fsnotify.Watcher) {
	defer close(f.done)
	defer w.Close()
	var timer <-chan time.Time
	for {
		select {
		case <-f.stop:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == f.path {
				timer = time.After(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			f.log.Warn("watching a number table", "file", f.path, "error", err)
		case <-timer:
			timer = nil
			f.reload()
		}
	}
}

// reload loads the file after a change and logs the outcome: the watcher
// has no caller to return an error to.
func (f *File) reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := os.Stat(f.path); err != nil {
		return // between rm and recreate: the next event brings it back
	}
	changed, err := f.load(false)
	switch {
	case err != nil:
		f.log.Error("number table reload", "outcome", "failed", "error", err.Error(), "rows", f.table.Load().Len())
	case changed:
		f.log.Info("number table reload", "outcome", "applied", "file", f.path, "rows", f.table.Load().Len())
	}
}

// Close stops the watcher, if any, and waits for it.
func (f *File) Close() error {
	if f.stop != nil {
		close(f.stop)
		<-f.done
		f.stop = nil
	}
	return nil
}
