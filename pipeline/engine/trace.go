package engine

import (
	"log/slog"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/capture"
)

// stageTrace returns the step function that logs what each stage did with
// the request, or nil when [log] trace is off for it. It first logs where
// the request came from and the NAT verdict on it (source.nated), with
// the header that decided. With a recorder, the steps go to it too, traced
// or not; traced says whether the trace is on for the request.
func (t *transaction) stageTrace(ctx *pipeline.Context) (steps func(pipeline.Step), traced bool) {
	record := t.recordSteps(true, 0, ctx.Request.CSeq(), ctx.Request.CallID())
	if !t.p.Traced(ctx.Env) {
		return record, false
	}
	nat := pipeline.DetectNAT(ctx.Request, ctx.Source, ctx.Transport)
	t.log.Info("trace source", "source", ctx.Source.String(), "transport", ctx.Transport, "nated", nat.Behind, "nat", nat.Reason)
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
		if record != nil {
			record(s)
		}
	}, true
}

// responseTrace is stageTrace for the response stages.
func (t *transaction) responseTrace(rc *pipeline.ResponseContext) func(pipeline.Step) {
	code := rc.Response.StatusCode
	record := t.recordSteps(false, code, rc.Response.CSeq(), rc.Response.CallID())
	if !t.p.Traced(rc.Env) {
		return record
	}
	return func(s pipeline.Step) {
		attrs := []any{"stage", s.Stage, "code", code, "matched", s.Matched, "local", rc.Local}
		if s.RuleErr != nil {
			attrs = append(attrs, "rule_error", s.RuleErr.Error())
		}
		t.log.Info("trace response", attrs...)
		if record != nil {
			record(s)
		}
	}
}

// recordSteps returns the step function that hands each stage's decision
// on a message to the recorder, or nil without one.
func (t *transaction) recordSteps(request bool, code int, cseq *sip.CSeqHeader, callID *sip.CallIDHeader) func(pipeline.Step) {
	rec := t.e.captures.recorder
	if rec == nil || cseq == nil || callID == nil {
		return nil
	}
	id, key := callID.Value(), capture.StepKey(request, code, cseq.Value())
	return func(s pipeline.Step) {
		d := capture.Decision{Stage: s.Stage, Matched: s.Matched}
		if s.Matched {
			d.Verdict = s.Verdict.String()
		}
		rec.Decide(id, key, d)
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
