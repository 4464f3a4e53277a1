package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// quietHandler wraps the logger given to sipgo's transport and transaction
// layers. sipgo logs every message it cannot parse at error level, with the
// whole message: a flood of garbage would become a flood of log lines. This
// handler cuts long attributes to maxAttr bytes and lets at most burst
// error or warning lines through per second; the others are counted and
// reported with the next line that passes. It only logs: what sipgo could
// not parse is answered by the engine (parseWatch), not from these lines.
type quietHandler struct {
	slog.Handler
	gate *logGate
}

const (
	maxAttr = 256
	burst   = 10
)

// logGate lets at most limit events through per second.
type logGate struct {
	limit   int
	mu      sync.Mutex
	second  int64
	n       int
	dropped int
}

func newQuietHandler(h slog.Handler) *quietHandler {
	return &quietHandler{Handler: h, gate: &logGate{limit: burst}}
}

// allow reports whether a line may pass now, and how many were dropped
// before it.
func (g *logGate) allow(now time.Time) (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := now.Unix(); s != g.second {
		g.second, g.n = s, 0
	}
	if g.n >= g.limit {
		g.dropped++
		return false, 0
	}
	g.n++
	d := g.dropped
	g.dropped = 0
	return true, d
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		ok, dropped := h.gate.allow(r.Time)
		if !ok {
			return nil
		}
		out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			if a.Value.Kind() == slog.KindString && len(a.Value.String()) > maxAttr {
				a = slog.String(a.Key, a.Value.String()[:maxAttr]+"...")
			}
			out.AddAttrs(a)
			return true
		})
		if dropped > 0 {
			out.AddAttrs(slog.Int("similar_lines_dropped", dropped))
		}
		return h.Handler.Handle(ctx, out)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &quietHandler{Handler: h.Handler.WithAttrs(attrs), gate: h.gate}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{Handler: h.Handler.WithGroup(name), gate: h.gate}
}
