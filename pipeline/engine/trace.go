package engine

import (
	"log/slog"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// stageTrace returns the step function that logs what each stage did with
// the request, or nil when [log] trace is off for it.
func (t *transaction) stageTrace(ctx *pipeline.Context) func(pipeline.Step) {
	if !t.p.Traced(ctx.Env) {
		return nil
	}
	return func(s pipeline.Step) {
		attrs := []any{"stage", s.Stage, "matched", s.Matched}
		if s.Matched {
			attrs = append(attrs, "verdict", s.Verdict.String())
			if s.Verdict == pipeline.Replied && ctx.Response() != nil {
				attrs = append(attrs, "code", ctx.Response().StatusCode)
			}
			if s.Verdict == pipeline.Forwarded {
				attrs = append(attrs, "targets", len(ctx.Targets))
			}
		}
		if s.RuleErr != nil {
			attrs = append(attrs, "rule_error", s.RuleErr.Error())
		}
		t.log.Info("trace request", attrs...)
	}
}

// responseTrace is stageTrace for the response stages.
func (t *transaction) responseTrace(rc *pipeline.ResponseContext) func(pipeline.Step) {
	if !t.p.Traced(rc.Env) {
		return nil
	}
	code := rc.Response.StatusCode
	return func(s pipeline.Step) {
		attrs := []any{"stage", s.Stage, "code", code, "matched", s.Matched, "local", rc.Local}
		if s.RuleErr != nil {
			attrs = append(attrs, "rule_error", s.RuleErr.Error())
		}
		t.log.Info("trace response", attrs...)
	}
}

// traceBranch logs where a branch went.
func (t *transaction) traceBranch(br *sip.Request) {
	t.log.Info("trace forward", "uri", br.Recipient.String(), "destination", br.Destination(), "transport", br.Transport())
}

// tracer is sipgo's raw message tracer: it logs every SIP message read and
// written, whole, while [log] trace_messages is on (and trace_when, if set,
// matches). sipgo's SIPDebug is set once at start, since it is a plain
// global; with the trace off, a message costs one pointer load here.
type tracer struct {
	e   *Engine
	log *slog.Logger
}

func (tr tracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	tr.trace("in", transport, laddr, raddr, msg)
}

func (tr tracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	tr.trace("out", transport, laddr, raddr, msg)
}

func (tr tracer) trace(dir, transport, laddr, raddr string, msg []byte) {
	p := tr.e.current.Load()
	if p == nil {
		return
	}
	tr.e.capture(p, dir, transport, laddr, raddr, msg)
	env := func() *pipeline.Env {
		m, err := tr.e.traceParser.ParseSIP(msg)
		if err != nil {
			return nil
		}
		return p.MessageEnv(m)
	}
	if !p.TracedMessage(env) {
		return
	}
	tr.log.Info("sip "+dir, "transport", transport, "local", laddr, "remote", raddr, "message", string(msg))
}
