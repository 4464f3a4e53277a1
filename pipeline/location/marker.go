package location

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// markerSuffix names the marker file of a bolt store: FILE.exists, beside
// FILE, says that a store was kept in FILE. A bbolt file is never empty
// once made, so a marker beside a missing or empty FILE means that the
// store was lost (removed, cut to nothing, a wrong volume), not that the
// proxy runs for the first time.
const markerSuffix = ".exists"

// markerText is what a marker file holds, for whoever finds it.
const markerText = "The location store %s was kept here. Switchboard refuses to start while\n" +
	"it is missing or empty: restore its newest good copy, or remove this file to\n" +
	"start with an empty store (see docs/operations.md).\n"

// Marker returns the name of the marker file of the bolt file at path.
func Marker(path string) string { return path + markerSuffix }

// vanished returns an error when the bolt file at path is missing or empty
// while its marker says that a store was kept there.
func vanished(path string) error {
	if _, err := os.Stat(Marker(path)); err != nil {
		return nil
	}
	what := "missing"
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	} else if err == nil {
		what = "empty"
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil // NewBolt says what is wrong
	}
	return fmt.Errorf("location store %s is %s, but %s says a store was kept there: %s", path, what, Marker(path),
		recovery(path, fmt.Sprintf("remove %s to start with an empty store", Marker(path))))
}

// mark writes the marker of the bolt file at path, unless it is there
// already: a start never rewrites it (a full disk would otherwise fail a
// start that needs nothing new).
func mark(path string) error {
	f, err := os.OpenFile(Marker(path), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err == nil {
		_, err = f.Write(fmt.Appendf(nil, markerText, path))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("location store %s: %w", path, err)
	}
	return nil
}

// Recovery says what the operator can do about a damaged or lost bolt file
// at path: restore its newest copy, if there is one, or start empty.
func Recovery(path string) string {
	empty := fmt.Sprintf("move %s aside to start with an empty store", path)
	if _, err := os.Stat(Marker(path)); err == nil {
		empty = fmt.Sprintf("move %s aside and remove %s to start with an empty store", path, Marker(path))
	}
	return recovery(path, empty)
}

// recovery says what the operator can do about the bolt file at path:
// restore its newest copy, if there is one, or empty, which starts empty.
func recovery(path, empty string) string {
	if _, err := os.Stat(copyName(path, 1)); err != nil {
		return "there is no copy of it to restore; " + empty
	}
	return fmt.Sprintf("restore its newest copy (switchboard store check %[1]s.1, then cp %[1]s.1 %[1]s), or %[2]s", path, empty)
}
