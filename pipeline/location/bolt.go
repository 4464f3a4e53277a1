package location

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// boltLockTimeout is how long NewBolt waits for the lock of a file that
// another process holds before it gives up.
const boltLockTimeout = time.Second

// boltBatchMax is the most writes the writer commits in one transaction.
const boltBatchMax = 128

// boltSweepEvery is how often Sweep really runs: each run that finds
// something due is one write transaction, one fsync.
const boltSweepEvery = 30 * time.Second

// bucketAORs is the bbolt bucket that maps an AOR to its record (see
// encodeRecord).
var bucketAORs = []byte("aors")

// bucketDue is the bbolt bucket that files each AOR under the second at
// which Sweep must look at it next (its record's due): its keys are that
// second (8 bytes, big-endian, so that they sort by time) then the AOR,
// its values empty. Sweep reads the keys up to now and no others.
var bucketDue = []byte("due")

// errNoChange rolls back a write transaction that has nothing to write.
var errNoChange = errors.New("no change")

// Bolt is a Store kept in a bbolt file: the embedded, persistent store.
// Every change is written and synced to disk (bbolt commits with fsync)
// before Update returns, so a binding whose 200 was sent survives a crash;
// a restart restores every live binding with the time it has left, since
// Expires is an absolute time.
//
// The file holds two buckets: "aors", whose keys are the AORs and whose
// values are its records (the AOR's bindings and its tombstone time,
// packed: see encodeRecord; JSON in a file written before),
// and "due", which files each AOR under the second its record is due for
// Sweep (see bucketDue). Opening the file files every record that is not
// filed (all of them in a file written before "due" existed).
//
// Lookup reads in a bbolt read transaction, which never waits for writers.
// Updates go through one writer goroutine, which commits the writes that
// wait together, one transaction and one fsync for all of them. The file
// is locked while open: a second process gets an error, not a shared file.
//
// AORs and Held read counters kept in memory: NewBolt counts the records
// that hold bindings and their bindings, and each Update and Sweep adds
// what its committed transaction changed.
type Bolt struct {
	db     *bolt.DB
	path   string
	sweeps sweepGate
	// held is the number of records that hold bindings (live, or lapsed
	// since the last Sweep): what AORs returns.
	held atomic.Int64
	// bound is the number of bindings the records hold (live, or lapsed
	// since the last Sweep).
	bound atomic.Int64
	// clock is what Count takes as "now"; tests replace it.
	clock func() time.Time

	// writes carries each Update to the writer goroutine; closing
	// guards it against Close (see Update).
	writes     chan *boltWrite
	closing    sync.RWMutex
	closed     bool
	writerDone chan struct{}
	// commits and taken count the writer's transactions and the writes
	// it took into them, for tests.
	commits, taken atomic.Int64
}

var (
	_ Store  = (*Bolt)(nil)
	_ Holder = (*Bolt)(nil)
)

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
		due, err := tx.CreateBucketIfNotExists(bucketDue)
		if err != nil {
			return err
		}
		// File every record that is not filed under its due second: all
		// of them in a file written before the due bucket, none after.
		var fileErr error
		err = s.each(tx, func(aor string, r *record) {
			if len(r.bindings) > 0 {
				s.held.Add(1)
				s.bound.Add(int64(len(r.bindings)))
			}
			if k := dueKey(r.due(), aor); fileErr == nil && !has(due, k) {
				fileErr = due.Put(k, []byte{})
			}
		})
		return errors.Join(err, fileErr)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("location store %s: %w", path, err)
	}
	s.writes = make(chan *boltWrite, boltBatchMax)
	s.writerDone = make(chan struct{})
	go s.writer()
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
// minus the bindings already expired at now, in a bbolt write transaction:
// it is atomic with respect to every other write, and durable when Update
// returns. The writes of concurrent Updates share a transaction and its
// fsync (see writer). fn runs inside the transaction, so it must be quick
// and must not call the Store. When fn leaves no binding of an AOR that
// had some, the AOR is remembered as known for TombstoneTTL.
func (s *Bolt) Update(aor string, now time.Time, fn func(current []Binding) ([]Binding, error)) ([]Binding, error) {
	w := &boltWrite{aor: aor, now: now, fn: fn, done: make(chan struct{})}
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return nil, fmt.Errorf("location store %s: %w", s.path, berrors.ErrDatabaseNotOpen)
	}
	s.writes <- w // the writer drains writes whatever Close does
	s.closing.RUnlock()
	<-w.done
	if w.err != nil || len(w.stored) == 0 {
		return nil, w.err
	}
	return w.stored, nil // live copies already (storable), and not kept: put encodes them
}

// boltWrite is an Update on its way through the writer.
type boltWrite struct {
	aor string
	now time.Time
	fn  func(current []Binding) ([]Binding, error)
	// stored is what the write stored and err why it failed (fn's error
	// as fn returned it); held and bound are what it adds to the
	// counters. They are set when done is closed.
	stored      []Binding
	err         error
	held, bound int
	done        chan struct{}
}

// writer commits the writes that Update sends, until Close: each
// transaction takes the write that comes and every one that waits behind
// it (up to boltBatchMax), so that the writes that come while one
// transaction syncs share the next one's fsync (group commit). One
// transaction per write bounded the REGISTERs a bolt store took per
// second to the fsyncs the disk does per second, and each fsync costs
// CPU too (0.2 to 0.6 ms of it on the benchmark's machine).
//
// Before it commits, the writer yields to the goroutines that are ready
// to run, as long as that brings it more writes: on one CPU the requests
// read with the first write have not run yet, and while an fsync holds
// the CPU none of them reaches Update. Without the yield the writer's
// transactions carried 1.2 writes on average at 3200 REGISTERs a second,
// and it fell behind; with it, 6 to 13. A write never waits for others
// to come.
func (s *Bolt) writer() {
	defer close(s.writerDone)
	batch := make([]*boltWrite, 0, boltBatchMax)
	for w := range s.writes {
		batch = append(batch[:0], w)
		for s.gather(&batch) && len(batch) < boltBatchMax {
			before := len(batch)
			runtime.Gosched()
			if s.gather(&batch); len(batch) == before {
				break
			}
		}
		s.taken.Add(int64(len(batch)))
		s.commit(batch)
		clear(batch)
	}
}

// gather adds the writes that wait to batch, up to boltBatchMax, and
// reports whether writes is still open.
func (s *Bolt) gather(batch *[]*boltWrite) (open bool) {
	for len(*batch) < boltBatchMax {
		select {
		case w, ok := <-s.writes:
			if !ok {
				return false
			}
			*batch = append(*batch, w)
		default:
			return true
		}
	}
	return true
}

// commit runs the writes of batch, in order, in one write transaction. A
// write whose fn fails, or whose record does not decode, changes nothing
// and fails alone; the others commit together, or all fail with the
// transaction.
func (s *Bolt) commit(batch []*boltWrite) {
	s.commits.Add(1)
	err := s.db.Update(func(tx *bolt.Tx) error {
		changed := false
		for _, w := range batch {
			w.stored, w.err, w.held, w.bound = nil, nil, 0, 0
			wrote, err := s.apply(tx, w)
			if err != nil {
				return err
			}
			changed = changed || wrote
		}
		if !changed {
			return errNoChange // nothing to sync
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		err = nil
	}
	for _, w := range batch {
		switch {
		case w.err != nil:
		case err != nil:
			w.err = fmt.Errorf("location store %s: %w", s.path, err)
		default:
			s.held.Add(int64(w.held))
			s.bound.Add(int64(w.bound))
		}
		close(w.done)
	}
}

// apply runs w in tx and reports whether it wrote. It returns an error
// only for a failed write, which fails the transaction.
func (s *Bolt) apply(tx *bolt.Tx, w *boltWrite) (wrote bool, err error) {
	r, err := s.get(tx, w.aor)
	if err != nil {
		w.err = fmt.Errorf("location store %s: %w", s.path, err)
		return false, nil
	}
	var current []Binding
	wasDue := int64(-1) // not filed
	if r != nil {
		current = liveCopies(r.bindings, w.now)
		wasDue = r.due()
	}
	next, err := w.fn(current)
	if err != nil {
		w.err = err
		return false, nil
	}
	w.stored = storable(w.aor, w.now, next)
	if r == nil {
		if len(w.stored) == 0 {
			// Nothing was, nothing is: no tombstone for an AOR never seen.
			return false, nil
		}
		r = &record{}
	}
	had := len(r.bindings)
	w.held = r.replace(w.stored, current, w.now)
	w.bound = len(r.bindings) - had
	if err := s.put(tx, w.aor, r); err != nil {
		return false, err
	}
	return true, refile(tx, w.aor, wasDue, r.due())
}

// Sweep removes the bindings that expired by now and returns how many, and
// forgets the AORs that lost their last binding TombstoneTTL or more ago.
// It runs at most once per boltSweepEvery (or when now goes back), and
// returns 0 in between. It reads only the AORs filed in the due bucket
// under the seconds up to now, in one write transaction: its cost is that
// of what is due, not of what is held.
func (s *Bolt) Sweep(now time.Time) int {
	if !s.sweeps.enter(now) {
		return 0
	}
	defer s.sweeps.leave()
	removed, lost := 0, 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed, lost = 0, 0
		due := tx.Bucket(bucketDue)
		end := dueKey(now.Unix()+1, "")
		var keys [][]byte
		c := due.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		if len(keys) == 0 {
			return errNoChange
		}
		for _, k := range keys {
			if err := due.Delete(k); err != nil {
				return err
			}
			aor := string(k[8:])
			r, err := s.get(tx, aor)
			if err != nil || r == nil {
				continue // a record that does not decode stays, unswept
			}
			had := len(r.bindings) > 0
			n, forget := r.sweep(now)
			removed += n
			if had && len(r.bindings) == 0 {
				lost++
			}
			switch {
			case forget:
				err = tx.Bucket(bucketAORs).Delete([]byte(aor))
			case n > 0:
				err = s.put(tx, aor, r)
			}
			if err == nil && !forget {
				err = due.Put(dueKey(r.due(), aor), []byte{})
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
	s.bound.Add(-int64(removed))
	return removed
}

// dueKey is the key of the due bucket that files aor under second.
func dueKey(second int64, aor string) []byte {
	k := make([]byte, 8, 8+len(aor))
	binary.BigEndian.PutUint64(k, uint64(max(second, 0)))
	return append(k, aor...)
}

// has reports whether b holds the key k.
func has(b *bolt.Bucket, k []byte) bool {
	found, _ := b.Cursor().Seek(k)
	return bytes.Equal(found, k)
}

// refile moves aor in the due bucket from the second wasDue (-1: it was
// not filed) to due.
func refile(tx *bolt.Tx, aor string, wasDue, due int64) error {
	if wasDue == due {
		return nil
	}
	b := tx.Bucket(bucketDue)
	if wasDue >= 0 {
		if err := b.Delete(dueKey(wasDue, aor)); err != nil {
			return err
		}
	}
	return b.Put(dueKey(due, aor), []byte{})
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

// Held returns the number of AORs that hold bindings and of the bindings
// they hold, from counters that NewBolt, Update and Sweep keep: live
// ones, and those lapsed since the last Sweep that ran (at most
// boltSweepEvery before).
func (s *Bolt) Held() (aors, bindings int) {
	return int(s.held.Load()), int(s.bound.Load())
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

// Close waits for the writes under way, then closes the file. Updates
// after it fail.
func (s *Bolt) Close() error {
	s.closing.Lock()
	if !s.closed {
		s.closed = true
		close(s.writes)
	}
	s.closing.Unlock()
	<-s.writerDone
	return s.db.Close()
}

// get returns the record of aor, or nil if there is none.
func (s *Bolt) get(tx *bolt.Tx, aor string) (*record, error) {
	data := tx.Bucket(bucketAORs).Get([]byte(aor))
	if data == nil {
		return nil, nil
	}
	r, err := decodeRecord(aor, data)
	if err != nil {
		return nil, fmt.Errorf("record of %q: %w", aor, err)
	}
	return r, nil
}

// put writes the record of aor.
func (s *Bolt) put(tx *bolt.Tx, aor string, r *record) error {
	return tx.Bucket(bucketAORs).Put([]byte(aor), encodeRecord(r))
}

// each calls fn for every record that decodes; it skips the others.
func (s *Bolt) each(tx *bolt.Tx, fn func(aor string, r *record)) error {
	return tx.Bucket(bucketAORs).ForEach(func(k, v []byte) error {
		aor := string(k)
		if r, err := decodeRecord(aor, v); err == nil {
			fn(aor, r)
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
