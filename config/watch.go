package config

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher calls a function when the config file, or another file the config
// loads, changes. It watches the files' directories rather than the files,
// since editors save by writing a new file and renaming it over the old
// one, and rm + recreate must keep working. Events are debounced, and a
// change whose content hash did not change is skipped.
type Watcher struct {
	fs       *fsnotify.Watcher
	debounce time.Duration
	onChange func(path string)
	onError  func(error)

	mu     sync.Mutex
	files  map[string][32]byte // watched file -> hash of its last content
	dirs   map[string]bool
	timers map[string]*time.Timer
	done   chan struct{}
}

// NewWatcher starts a watcher. onChange runs (on the watcher's goroutine,
// one call at a time) with the path of a file whose content changed;
// onError reports watch errors.
func NewWatcher(debounce time.Duration, onChange func(path string), onError func(error)) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		fs: fw, debounce: debounce, onChange: onChange, onError: onError,
		files: map[string][32]byte{}, dirs: map[string]bool{}, timers: map[string]*time.Timer{},
		done: make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

// Watch adds files to the watched set (the set only grows; a file no longer
// used costs one hash on change).
func (w *Watcher) Watch(paths ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if _, ok := w.files[abs]; !ok {
			w.files[abs] = hashFile(abs)
		}
		dir := filepath.Dir(abs)
		if !w.dirs[dir] {
			if err := w.fs.Add(dir); err != nil {
				return err
			}
			w.dirs[dir] = true
		}
	}
	return nil
}

// Close stops the watcher.
func (w *Watcher) Close() error {
	close(w.done)
	w.mu.Lock()
	for _, t := range w.timers {
		t.Stop()
	}
	w.mu.Unlock()
	return w.fs.Close()
}

func (w *Watcher) loop() {
	fire := make(chan string, 16)
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			w.schedule(ev.Name, fire)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			if w.onError != nil {
				w.onError(err)
			}
		case path := <-fire:
			w.check(path)
		}
	}
}

// schedule (re)starts the debounce timer of a watched file.
func (w *Watcher) schedule(name string, fire chan<- string) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.files[abs]; !ok {
		return
	}
	if t, ok := w.timers[abs]; ok {
		t.Reset(w.debounce)
		return
	}
	w.timers[abs] = time.AfterFunc(w.debounce, func() {
		select {
		case fire <- abs:
		case <-w.done:
		}
	})
}

// check hashes the file and calls onChange when its content changed. A
// missing file (between rm and recreate) is not a change: the next event
// brings it back.
func (w *Watcher) check(path string) {
	w.mu.Lock()
	delete(w.timers, path)
	old := w.files[path]
	w.mu.Unlock()
	if _, err := os.Stat(path); err != nil {
		return
	}
	h := hashFile(path)
	if h == old {
		return
	}
	w.mu.Lock()
	w.files[path] = h
	w.mu.Unlock()
	w.onChange(path)
}

func hashFile(path string) [32]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(data)
}
