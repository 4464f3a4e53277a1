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
// reported with the next line that passes.
//
// It is also where a UDP datagram sipgo could not parse is answered: the
// "failed to parse" line of sipgo's UDP transport (the logger it was given
// carries caller=Transport<UDP>) goes to answerUnparsable, before the gate.
type quietHandler struct {
	slog.Handler
	gate *logGate
	udp  bool // the logger of sipgo's UDP transport
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

// Enabled lets sipgo's UDP transport log its errors whatever the level,
// so that Handle sees every "failed to parse".
func (h *quietHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.udp && level >= slog.LevelError || h.Handler.Enabled(ctx, level)
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.udp && r.Message == "failed to parse" {
		answerUnparsable(parseFailure(r))
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
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
	udp := h.udp
	for _, a := range attrs {
		if a.Key == "caller" && a.Value.String() == "Transport<UDP>" {
			udp = true
		}
	}
	return &quietHandler{Handler: h.Handler.WithAttrs(attrs), gate: h.gate, udp: udp}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{Handler: h.Handler.WithGroup(name), gate: h.gate, udp: h.udp}
}

// parseFailure returns the data and the error of sipgo's "failed to
// parse" record.
func parseFailure(r slog.Record) (data, cause string) {
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			data = a.Value.String()
		case "error":
			if err, ok := a.Value.Any().(error); ok {
				cause = err.Error()
			} else {
				cause = a.Value.String()
			}
		}
		return true
	})
	return data, cause
}
