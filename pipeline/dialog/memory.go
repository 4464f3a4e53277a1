package dialog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

const memoryShards = 64

// sweepEvery is how often Sweep really walks the dialogs: an expired one
// is never returned by Get, so sweeping only frees memory.
const sweepEvery = 10 * time.Second

// Memory is a Store in this process's memory. With a file, it is written
// there when the store closes and read back when it opens, so that a
// graceful restart keeps the dialogs in progress (a crash loses them: their
// in-dialog requests are then refused, never relayed blindly).
type Memory struct {
	file   string
	seed   maphash.Seed
	shards [memoryShards]memoryShard

	swept atomic.Int64 // when Sweep last walked, Unix ns
}

type memoryShard struct {
	mu sync.Mutex
	// dialogs maps the key of each dialog's ID to its record (record.go),
	// which starts with that key.
	dialogs map[string]string
}

// lookup returns the record of id, if the shard has one. The caller
// holds s.mu.
func (s *memoryShard) lookup(id ID) (string, bool) {
	var a [128]byte
	r, ok := s.dialogs[string(appendKey(a[:0], id))]
	return r, ok
}

// store keeps d as the dialog id names. The caller holds s.mu.
func (s *memoryShard) store(id ID, d *Dialog) {
	r, n := makeRecord(id, d)
	s.dialogs[r[:n]] = r
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store kept in memory only.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].dialogs = map[string]string{}
	}
	return m
}

// OpenMemory returns a store kept in memory and written to file when it
// closes, with the dialogs file holds that have not expired by now. The
// file is removed once read, so that a crash never brings back dialogs
// that ended after it was written.
func OpenMemory(file string, now time.Time) (*Memory, error) {
	m := NewMemory()
	m.file = file
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r snapshotRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w (remove the file: the dialogs in progress then lose their in-dialog requests)", file, line, err)
		}
		if r.Dialog.Expires.After(now) {
			m.shard(r.ID).store(r.ID, &r.Dialog)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := os.Remove(file); err != nil {
		return nil, err
	}
	return m, nil
}

// snapshotRecord is one line of the file a Memory is written to.
type snapshotRecord struct {
	ID     ID     `json:"id"`
	Dialog Dialog `json:"dialog"`
}

func (m *Memory) shard(id ID) *memoryShard {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(id.CallID)
	return &m.shards[h.Sum64()%memoryShards]
}

// Get returns the dialog id names, unless it expired by now.
func (m *Memory) Get(id ID, now time.Time) (Dialog, bool, error) {
	s := m.shard(id)
	s.mu.Lock()
	r, ok := s.lookup(id)
	s.mu.Unlock()
	if !ok {
		return Dialog{}, false, nil
	}
	_, d, err := readRecord(r)
	if err != nil || !d.Expires.After(now) {
		return Dialog{}, false, err
	}
	return d, true, nil
}

// Update changes the dialog id names with fn, under its shard's lock.
func (m *Memory) Update(id ID, now time.Time, fn func(d *Dialog, found bool) bool) error {
	s := m.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	var d Dialog
	r, found := s.lookup(id)
	if found {
		var err error
		if _, d, err = readRecord(r); err != nil {
			return err
		}
		if !d.Expires.After(now) {
			d, found = Dialog{}, false
		}
	}
	if fn(&d, found) {
		s.store(id, &d)
	}
	return nil
}

// Delete forgets the dialog.
func (m *Memory) Delete(id ID) error {
	var a [128]byte
	s := m.shard(id)
	s.mu.Lock()
	delete(s.dialogs, string(appendKey(a[:0], id)))
	s.mu.Unlock()
	return nil
}

// Sweep forgets the dialogs that expired by now.
func (m *Memory) Sweep(now time.Time) int {
	last := m.swept.Load()
	if now.UnixNano()-last < int64(sweepEvery) || !m.swept.CompareAndSwap(last, now.UnixNano()) {
		return 0
	}
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, r := range s.dialogs {
			if !recordExpires(r, len(k)).After(now) {
				delete(s.dialogs, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of dialogs held, expired ones not yet swept
// included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.dialogs)
		s.mu.Unlock()
	}
	return n
}

// Close writes the dialogs to the store's file, if it has one. The file
// is written whole under another name first, so that a stop halfway
// leaves no half a file.
func (m *Memory) Close() error {
	if m.file == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(m.file), filepath.Base(m.file)+".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, r := range s.dialogs {
			if err == nil {
				var rec snapshotRecord
				if rec.ID, rec.Dialog, err = readRecord(r); err == nil {
					err = enc.Encode(rec)
				}
			}
		}
		s.mu.Unlock()
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), m.file)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing the dialogs to %s: %w", m.file, err)
	}
	return nil
}
