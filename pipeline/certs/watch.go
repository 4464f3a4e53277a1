package certs

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the files must stay unchanged before they are
// loaded: tools write a pair in several steps.
const debounce = 200 * time.Millisecond

// Watch reloads the store whenever its files change, until stop is
// closed. It watches the folders of the files and of the files their
// symbolic links lead to, so that a link swapped for another (certbot's
// live/ folder, a Kubernetes secret) is seen as well as a file written in
// place.
func (s *Store) Watch(stop <-chan struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	watched := map[string]bool{}
	follow := func() {
		for _, dir := range s.dirs() {
			if !watched[dir] && w.Add(dir) == nil {
				watched[dir] = true
			}
		}
	}
	follow()
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-stop:
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer = time.After(debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("watching the tls certificates", "error", err)
			case <-timer:
				timer = nil
				s.Reload()
				follow() // the links may lead somewhere new
			}
		}
	}()
	return nil
}

// dirs returns the folders of the store's files and of their links'
// targets.
func (s *Store) dirs() []string {
	var out []string
	for _, f := range s.Files() {
		out = append(out, filepath.Dir(f))
		if real, err := filepath.EvalSymlinks(f); err == nil && real != f {
			out = append(out, filepath.Dir(real))
		}
	}
	return out
}
