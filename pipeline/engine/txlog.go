package engine

import (
	"context"
	"log/slog"

	"github.com/emiago/sipgo/sip"
)

// txLogHandler adds a transaction's Call-ID and method to each line logged
// through it. Unlike slog.Logger.With, which has the handler format the
// attributes at once, it costs nothing until a line is written: most
// transactions log none.
type txLogHandler struct {
	inner slog.Handler
	req   *sip.Request
}

func (h *txLogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *txLogHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(slog.String("call_id", callID(h.req)), slog.String("method", string(h.req.Method)))
	return h.inner.Handle(ctx, r)
}

func (h *txLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.inner.WithAttrs(append([]slog.Attr{slog.String("call_id", callID(h.req)), slog.String("method", string(h.req.Method))}, attrs...))
}

func (h *txLogHandler) WithGroup(name string) slog.Handler {
	return h.inner.WithAttrs([]slog.Attr{slog.String("call_id", callID(h.req)), slog.String("method", string(h.req.Method))}).WithGroup(name)
}
