package location

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Copies is how many copies of its file a Bolt keeps: FILE.1, the newest,
// to FILE.3, the oldest.
const Copies = 3

// copyName returns the name of the nth copy of the bolt file at path.
func copyName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// Backup writes a copy of the store that a read transaction sees (bbolt's
// tx.WriteTo: consistent while Updates go on) to FILE.new, has check
// check it, and keeps it as FILE.1, the older copies moving up by one
// (see Copies). A copy that fails the check is removed and its error
// returned. A store that holds no record is not copied, nor is a copy
// that the check finds without one: it would restore nothing.
// It returns the name of the copy it kept, or "".
func (s *Bolt) Backup(check func(path string) (Summary, error)) (kept string, sum Summary, err error) {
	if s.empty() {
		return "", sum, nil
	}
	tmp := s.path + ".new"
	if err := s.writeCopy(tmp); err != nil {
		os.Remove(tmp)
		return "", sum, fmt.Errorf("location store %s: copy: %w", s.path, err)
	}
	sum, err = check(tmp)
	if err != nil || sum.Records() == 0 {
		os.Remove(tmp)
		if err != nil {
			return "", sum, fmt.Errorf("location store %s: its copy %s fails the check, the store may be damaged: %w", s.path, tmp, err)
		}
		return "", sum, nil
	}
	if err := rotate(s.path, tmp); err != nil {
		os.Remove(tmp)
		return "", sum, fmt.Errorf("location store %s: %w", s.path, err)
	}
	return copyName(s.path, 1), sum, nil
}

// empty reports whether the store holds no record.
func (s *Bolt) empty() bool {
	empty := false
	s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketAORs).Cursor().First()
		empty = k == nil
		return nil
	})
	return empty
}

// writeCopy writes the store to path, synced.
func (s *Bolt) writeCopy(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// rotate makes fresh the newest copy of the bolt file at path: FILE.n
// becomes FILE.n+1 (the last one is dropped), and fresh becomes FILE.1.
// Each step is a rename, so that every name holds a whole copy at all
// times.
func rotate(path, fresh string) error {
	for n := Copies - 1; n >= 1; n-- {
		err := os.Rename(copyName(path, n), copyName(path, n+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Rename(fresh, copyName(path, 1))
}
