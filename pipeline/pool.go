package pipeline

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Pool holds the values that stages share between pipelines, such as open
// files, call trackers and ban tables, by key, and counts their users, as
// Caddy's UsagePool does. The first LoadOrNew of a key constructs its
// value; every LoadOrNew counts one user more and every Release one less;
// the last Release destructs the value (closes it, if it is an io.Closer).
// A reload holds each value twice for a while (the new pipeline is
// provisioned before the old one is cleaned up), so that a value a config
// keeps outlives the reload, and one it drops is destructed with the old
// pipeline. The zero Pool is empty and ready; it is safe for concurrent
// use.
type Pool struct {
	mu    sync.Mutex
	uses  map[string]*use
	order []string // keys in the order their values were constructed
}

// use is one key's value and its users.
type use struct {
	value any
	err   error
	refs  int
	// ready is closed once the value is constructed, or failed to be.
	ready chan struct{}
	// gone is closed once the value is destructed; it is nil until its
	// last user releases it.
	gone chan struct{}
}

// LoadOrNew returns the value under key and counts one user more. With no
// value under key, it constructs one with construct; a LoadOrNew of the
// same key meanwhile waits for it, and so does one while the key's last
// value is being destructed, so that a file is closed before it is opened
// again. When construct fails, no value is stored and every caller that
// waited for it gets its error.
func (p *Pool) LoadOrNew(key string, construct func() (any, error)) (any, error) {
	for {
		p.mu.Lock()
		u, ok := p.uses[key]
		if ok && u.gone != nil {
			p.mu.Unlock()
			<-u.gone
			continue
		}
		if ok {
			u.refs++
			p.mu.Unlock()
			<-u.ready
			return u.value, u.err
		}
		u = &use{refs: 1, ready: make(chan struct{})}
		if p.uses == nil {
			p.uses = map[string]*use{}
		}
		p.uses[key] = u
		p.order = append(p.order, key)
		p.mu.Unlock()

		u.value, u.err = construct()
		if u.err != nil {
			u.value = nil
			p.mu.Lock()
			p.forget(key, u)
			p.mu.Unlock()
		}
		close(u.ready)
		return u.value, u.err
	}
}

// Release counts one user of key less; after the last it destructs the
// value and returns what its Close returned. A key the pool does not hold
// (Close destructed it already) is left alone.
func (p *Pool) Release(key string) error {
	p.mu.Lock()
	u, ok := p.uses[key]
	if !ok || u.gone != nil {
		p.mu.Unlock()
		return nil
	}
	u.refs--
	if u.refs > 0 {
		p.mu.Unlock()
		return nil
	}
	u.gone = make(chan struct{})
	p.mu.Unlock()
	return p.destruct(key, u)
}

// destruct closes the value of u, whose gone the caller set, and then
// takes key out of the pool.
func (p *Pool) destruct(key string, u *use) error {
	<-u.ready
	var err error
	if c, ok := u.value.(io.Closer); ok {
		err = c.Close()
	}
	p.mu.Lock()
	p.forget(key, u)
	p.mu.Unlock()
	close(u.gone)
	return err
}

// forget takes key out of the pool, unless a new use took its place; the
// caller holds the lock.
func (p *Pool) forget(key string, u *use) {
	if p.uses[key] != u {
		return
	}
	delete(p.uses, key)
	if i := slices.Index(p.order, key); i >= 0 {
		p.order = slices.Delete(p.order, i, i+1)
	}
}

// Load returns the value under key without counting a user, for a look at
// it (the admin API, tests); ok is false when there is none yet.
func (p *Pool) Load(key string) (value any, ok bool) {
	p.mu.Lock()
	u, ok := p.uses[key]
	p.mu.Unlock()
	if !ok || !constructed(u) {
		return nil, false
	}
	return u.value, true
}

// Range calls fn for every value the pool holds, in the order they were
// constructed, outside the pool's lock. A value's last user may release
// it meanwhile: a value that Range reaches must stay safe to use after
// its Close.
func (p *Pool) Range(fn func(key string, value any)) {
	p.mu.Lock()
	keys := make([]string, 0, len(p.order))
	values := make([]any, 0, len(p.order))
	for _, k := range p.order {
		if u := p.uses[k]; constructed(u) && u.gone == nil {
			keys, values = append(keys, k), append(values, u.value)
		}
	}
	p.mu.Unlock()
	for i, k := range keys {
		fn(k, values[i])
	}
}

// constructed reports whether u's value is ready and usable.
func constructed(u *use) bool {
	select {
	case <-u.ready:
		return u.err == nil
	default:
		return false
	}
}

// Close destructs every value the pool still holds, newest first, however
// many users it has: the process is stopping. A later Release of their
// keys does nothing.
func (p *Pool) Close() error {
	p.mu.Lock()
	type held struct {
		key string
		u   *use
	}
	var all []held
	for i := len(p.order) - 1; i >= 0; i-- {
		k := p.order[i]
		if u := p.uses[k]; u.gone == nil {
			u.gone = make(chan struct{})
			all = append(all, held{k, u})
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, h := range all {
		if err := p.destruct(h.key, h.u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Share returns the value that stages share between pipelines under key
// (Services.Shared), constructing it with construct when no pipeline holds
// it. The pipeline being built holds the value until its Cleanup, which
// releases it after the stages' own Cleanup: a stage never releases it
// itself. Keys are global: a stage prefixes its own with its name.
func Share[T any](b *BuildContext, key string, construct func() (T, error)) (T, error) {
	var zero T
	v, err := b.Services.Shared.LoadOrNew(key, func() (any, error) { return construct() })
	if err != nil {
		return zero, err
	}
	b.Pipeline.shared = append(b.Pipeline.shared, key)
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("shared value %q is a %T, not a %T", key, v, zero)
	}
	return t, nil
}
