package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Writable reports whether the file at path could be opened for appending,
// or created, without creating it: `validate` checks the files a start
// would write (a call log, the location store) and changes nothing. Its
// folder must exist, unless it is stateDir (server.state_dir), which a
// start creates with its parents: then the nearest folder above it that
// exists must be writable.
func Writable(path, stateDir string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) && stateDir != "" && filepath.Clean(dir) == filepath.Clean(stateDir) {
		for errors.Is(err, fs.ErrNotExist) && dir != filepath.Dir(dir) {
			dir = filepath.Dir(dir)
			st, err = os.Stat(dir)
		}
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("open %s: %s is not a directory", path, dir)
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("open %s: %w", path, &fs.PathError{Op: "create", Path: path, Err: err})
	}
	return nil
}
