package logs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// root holds the handler in force, which a reload replaces, and the level.
// Every logger derived with With or WithGroup shares it, so that a change
// reaches the loggers the stages and the engine keep.
type root struct {
	base  atomic.Pointer[base]
	level slog.LevelVar
	// writing is held shared by each record being written, so that a
	// swap can wait for the records still going to the old output
	// before it closes it.
	writing sync.RWMutex
}

// swap puts b in force and returns once no record is being written
// through the base it replaced.
func (r *root) swap(b *base) {
	r.base.Store(b)
	r.writing.Lock()
	defer r.writing.Unlock()
}

// base is one handler in force: a new one for each change of output or
// format, compared by pointer.
type base struct{ h slog.Handler }

// handler is a slog.Handler that writes through the root's current base,
// with the attributes and groups added by With and WithGroup.
type handler struct {
	root *root
	ops  []func(slog.Handler) slog.Handler
	// built is the base with ops applied, rebuilt when the base changes.
	built atomic.Pointer[derived]
}

type derived struct {
	from *base
	h    slog.Handler
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.root.level.Level()
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	h.root.writing.RLock()
	defer h.root.writing.RUnlock()
	return h.current().Handle(ctx, r)
}

// current returns the base in force with this handler's attributes and
// groups, built once per base.
func (h *handler) current() slog.Handler {
	b := h.root.base.Load()
	if d := h.built.Load(); d != nil && d.from == b {
		return d.h
	}
	out := b.h
	for _, op := range h.ops {
		out = op(out)
	}
	h.built.Store(&derived{from: b, h: out})
	return out
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithAttrs(attrs) })
}

func (h *handler) WithGroup(name string) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithGroup(name) })
}

func (h *handler) with(op func(slog.Handler) slog.Handler) *handler {
	ops := append(h.ops[:len(h.ops):len(h.ops)], op)
	return &handler{root: h.root, ops: ops}
}
