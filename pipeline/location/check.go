package location

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// checkMaxErrors is how many of bbolt's consistency errors CheckBolt
// reports; it counts the others.
const checkMaxErrors = 3

// Summary is what CheckBolt found in a bolt file.
type Summary struct {
	// AORs is the number of AORs that hold bindings, and Bindings the
	// number of bindings they hold (live, or lapsed since the last Sweep).
	AORs     int `json:"aors"`
	Bindings int `json:"bindings"`
	// Remembered is the number of AORs kept without bindings, so that a
	// call to them gets 480 rather than 404 (see TombstoneTTL).
	Remembered int `json:"remembered"`
}

// Records returns the number of AORs the file holds a record of.
func (s Summary) Records() int { return s.AORs + s.Remembered }

// CheckBolt reads the whole bolt file at path, read-only, and returns what
// it holds, or what is wrong with it: an empty file, meta pages whose
// checksums fail, a file shorter than its meta pages say, a page that is
// not where the tree says, bbolt's consistency check (tx.Check), a record
// that does not decode, a due key too short. A fault or a panic while it
// reads is an error, not a crash; bbolt's tx.Check runs in a goroutine of
// its own, which the reads before it make safe for the damage seen in
// tests, but not for all (run CheckBolt in a child process where a crash
// must not take the caller down, as the switchboard command does).
func CheckBolt(path string) (sum Summary, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return sum, err
	}
	if fi.Size() == 0 {
		return sum, errors.New("the file is empty")
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading it failed: %v", r)
		}
	}()
	if err := whole(path, fi.Size()); err != nil {
		return sum, err
	}
	// PreLoadFreelist reads the freelist here, where a fault is
	// recovered, rather than in tx.Check's goroutine.
	db, err := openReadOnly(path, &bolt.Options{PreLoadFreelist: true})
	if err != nil {
		return sum, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		if sum, err = walk(tx); err != nil {
			return err
		}
		return consistent(tx)
	})
	return sum, err
}

// ErrLocked is CheckBolt's error for a file that another process holds
// open: nothing is known of its state.
var ErrLocked = errors.New("the file is locked by another process (a proxy running on it? check its newest copy instead)")

// openReadOnly opens the bolt file at path read-only, with opts.
func openReadOnly(path string, opts *bolt.Options) (*bolt.DB, error) {
	opts.ReadOnly, opts.Timeout = true, boltLockTimeout
	db, err := bolt.Open(path, 0o600, opts)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, ErrLocked
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("its meta pages are damaged, or it is not a bbolt file: %w", err)
	}
	return db, err
}

// whole returns an error if the bolt file at path, of size bytes, is
// shorter than its meta page says.
func whole(path string, size int64) error {
	db, err := openReadOnly(path, &bolt.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > size {
			return fmt.Errorf("the file is %d bytes, shorter than the %d its meta page says: it was cut short", size, tx.Size())
		}
		return nil
	})
}

// walk reads every key of every bucket in tx, decodes every record and
// counts them.
func walk(tx *bolt.Tx) (Summary, error) {
	var sum Summary
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			switch string(name) {
			case string(bucketAORs):
				r, err := decodeRecord(string(k), v)
				if err != nil {
					return fmt.Errorf("the record of %q does not decode: %w", k, err)
				}
				if len(r.bindings) > 0 {
					sum.AORs++
					sum.Bindings += len(r.bindings)
				} else {
					sum.Remembered++
				}
			case string(bucketDue):
				if len(k) < 8 {
					return fmt.Errorf("the due key %x is shorter than 8 bytes", k)
				}
			}
			return nil
		})
	})
	return sum, err
}

// consistent runs bbolt's consistency check on tx and returns its first
// errors.
func consistent(tx *bolt.Tx) error {
	var errs []string
	n := 0
	for err := range tx.Check() {
		if n++; n <= checkMaxErrors {
			errs = append(errs, err.Error())
		}
	}
	if n > checkMaxErrors {
		errs = append(errs, fmt.Sprintf("and %d more", n-checkMaxErrors))
	}
	if n > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
