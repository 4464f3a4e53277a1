package location

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// boltLockTimeout is how long NewBolt waits for the lock of a file that
// another process holds before it gives up.
const boltLockTimeout = time.Second

// boltSweepEvery is how often Sweep really reads the AORs.
const boltSweepEvery = 30 * time.Second

// bucketAORs is the bbolt bucket that maps an AOR to its boltRecord.
var bucketAORs = []byte("aors")

// errNoChange rolls back a write transaction that has nothing to write.
var errNoChange = errors.New("no change")

// Bolt is a Store kept in a bbolt file: the embedded, persistent store.
// Every change is written and synced to disk (bbolt commits with fsync)
// before Update returns, so a binding whose 200 was sent survives a crash;
// a restart restores every live binding with the time it has left, since
// Expires is an absolute time.
//
// The file holds one bucket, "aors", whose keys are the AORs and whose
// values are JSON boltRecords: the AOR's bindings and its tombstone time.
// Lookup reads in a bbolt read transaction, which never waits for writers;
// writes are serialized by bbolt and each costs one fsync. The file is
// locked while open: a second process gets an error, not a shared file.
//
// AORs reads a counter kept in memory: NewBolt counts the records that
// hold bindings, and each Update and Sweep adds what its committed
// transaction changed.
type Bolt struct {
	db     *bolt.DB
	path   string
	sweeps sweepGate
	// held is the number of records that hold bindings (live, or lapsed
	// since the last Sweep): what AORs returns.
	held atomic.Int64
	// clock is what Count takes as "now"; tests replace it.
	clock func() time.Time
}

// boltRecord is what Bolt stores of one AOR, as JSON: a record.
type boltRecord struct {
	Bindings []Binding `json:"bindings,omitempty"`
	Gone     time.Time `json:"gone,omitzero"`
}

var _ Store = (*Bolt)(nil)

// NewBolt opens the bbolt file at path, creating it if it does not exist.
// It fails if another process has the file open, after waiting a second,
// and if the file is not a bbolt database.
func NewBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: boltLockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("location store %s is locked by another process", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("location store %s is not a bbolt database: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("location store %s: %w", path, err)
	}
	s := &Bolt{db: db, path: path, sweeps: sweepGate{every: boltSweepEvery}, clock: time.Now}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketAORs); err != nil {
			return err
		}
		return s.each(tx, func(_ string, r *record) {
			if len(r.bindings) > 0 {
				s.held.Add(1)
			}
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("location store %s: %w", path, err)
	}
	return s, nil
}

// Lookup returns the live bindings of aor at now, and whether the AOR is
// known: it has live bindings, or lost its last one less than
// TombstoneTTL before now.
func (s *Bolt) Lookup(aor string, now time.Time) ([]Binding, bool, error) {
	var r *record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = s.get(tx, aor)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("location store %s: %w", s.path, err)
	}
	if r == nil {
		return nil, false, nil
	}
	if live := liveCopies(r.bindings, now); len(live) > 0 {
		return live, true, nil
	}
	return nil, known(r.goneAt(), now), nil
}

// Update passes the live bindings of aor to fn and stores what fn returns,
// minus the bindings already expired at now, in one bbolt write
// transaction: it is atomic with respect to every other write, and durable
// when Update returns. fn runs inside the transaction, so it must be quick
// and must not call the Store. When fn leaves no binding of an AOR that had
// some, the AOR is remembered as known for TombstoneTTL.
func (s *Bolt) Update(aor string, now time.Time, fn func(current []Binding) ([]Binding, error)) ([]Binding, error) {
	var stored []Binding
	var fnErr error
	held := 0 // what the write adds to s.held
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := s.get(tx, aor)
		if err != nil {
			return err
		}
		var current []Binding
		if r != nil {
			current = liveCopies(r.bindings, now)
		}
		next, err := fn(current)
		if err != nil {
			fnErr = err
			return err
		}
		stored = storable(aor, now, next)
		if r == nil {
			if len(stored) == 0 {
				// Nothing was, nothing is: no tombstone for an AOR never seen.
				return errNoChange
			}
			r = &record{}
		}
		held = r.replace(stored, current, now)
		return s.put(tx, aor, r)
	})
	switch {
	case fnErr != nil:
		return nil, fnErr
	case errors.Is(err, errNoChange):
	case err != nil:
		return nil, fmt.Errorf("location store %s: %w", s.path, err)
	default:
		s.held.Add(int64(held))
	}
	return liveCopies(stored, now), nil
}

// Sweep removes the bindings that expired by now and returns how many, and
// forgets the AORs that lost their last binding TombstoneTTL or more ago.
// As it reads every record, it does so at most once per boltSweepEvery
// (or when now goes back), and returns 0 in between. It finds what to
// change in a read transaction, so that the write transaction, which
// holds up every Update, only touches what changes.
func (s *Bolt) Sweep(now time.Time) int {
	if !s.sweeps.enter(now) {
		return 0
	}
	defer s.sweeps.leave()
	var due []string
	s.db.View(func(tx *bolt.Tx) error {
		return s.each(tx, func(aor string, r *record) {
			if n, forget := r.sweep(now); n > 0 || forget {
				due = append(due, aor)
			}
		})
	})
	if len(due) == 0 {
		return 0
	}
	removed, lost := 0, 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed, lost = 0, 0
		for _, aor := range due {
			r, err := s.get(tx, aor)
			if err != nil || r == nil {
				continue
			}
			had := len(r.bindings) > 0
			n, forget := r.sweep(now)
			removed += n
			if had && len(r.bindings) == 0 {
				lost++
			}
			if forget {
				err = tx.Bucket(bucketAORs).Delete([]byte(aor))
			} else if n > 0 {
				err = s.put(tx, aor, r)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0
	}
	s.held.Add(-int64(lost))
	return removed
}

// Count returns the number of AORs with live bindings and the number of
// live bindings, at the present time. It reads every record: it is meant
// for metrics and the admin API, not for each request.
func (s *Bolt) Count() (aors, bindings int) {
	now := s.clock()
	s.db.View(func(tx *bolt.Tx) error {
		return s.each(tx, func(_ string, r *record) {
			if n := countLive(r.bindings, now); n > 0 {
				aors++
				bindings += n
			}
		})
	})
	return aors, bindings
}

// AORs returns the number of AORs that hold bindings, from the counter:
// an AOR whose last binding lapsed is counted until the next Sweep that
// runs (at most boltSweepEvery later). It never fails.
func (s *Bolt) AORs(time.Time) (int, error) { return int(s.held.Load()), nil }

// Each calls fn for every AOR with live bindings, after reading them all
// in one read transaction.
func (s *Bolt) Each(now time.Time, fn func(aor string, bindings []Binding) bool) error {
	type item struct {
		aor string
		bs  []Binding
	}
	var items []item
	err := s.db.View(func(tx *bolt.Tx) error {
		return s.each(tx, func(aor string, r *record) {
			if bs := liveCopies(r.bindings, now); len(bs) > 0 {
				items = append(items, item{aor, bs})
			}
		})
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		if !fn(it.aor, it.bs) {
			break
		}
	}
	return nil
}

// Close closes the file.
func (s *Bolt) Close() error { return s.db.Close() }

// get returns the record of aor, or nil if there is none.
func (s *Bolt) get(tx *bolt.Tx, aor string) (*record, error) {
	data := tx.Bucket(bucketAORs).Get([]byte(aor))
	if data == nil {
		return nil, nil
	}
	var br boltRecord
	if err := json.Unmarshal(data, &br); err != nil {
		return nil, fmt.Errorf("record of %q: %w", aor, err)
	}
	return &record{bindings: br.Bindings, gone: br.Gone}, nil
}

// put writes the record of aor.
func (s *Bolt) put(tx *bolt.Tx, aor string, r *record) error {
	data, err := json.Marshal(boltRecord{Bindings: r.bindings, Gone: r.gone})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketAORs).Put([]byte(aor), data)
}

// each calls fn for every record that decodes; it skips the others.
func (s *Bolt) each(tx *bolt.Tx, fn func(aor string, r *record)) error {
	return tx.Bucket(bucketAORs).ForEach(func(k, v []byte) error {
		var br boltRecord
		if json.Unmarshal(v, &br) == nil {
			fn(string(k), &record{bindings: br.Bindings, gone: br.Gone})
		}
		return nil
	})
}

// countLive returns how many of bs are live at now.
func countLive(bs []Binding, now time.Time) int {
	n := 0
	for _, b := range bs {
		if b.Expires.After(now) {
			n++
		}
	}
	return n
}
