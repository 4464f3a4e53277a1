package engine

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/capture"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// captures hands every SIP message the proxy reads or writes, on any
// transport, to the capture exporter ([capture]: HEP to Homer, pcap files
// of traced calls). It sees them through sipgo's message tracer, as the
// raw trace does, which names the transport UDP, TCP (TLS too) or WS (WSS
// too): HEP and pcap tell only UDP from TCP anyway. What is sent is
// decided on the exporter's goroutine, so that a message costs SIP a copy
// and a channel send at most.
type captures struct {
	log *slog.Logger
	// recorder, if any, keeps the calls' messages for the console: it is
	// fed on the exporter's goroutine.
	recorder *capture.Recorder
	// exporter starts with the first message captured.
	start    sync.Once
	exporter atomic.Pointer[capture.Exporter]
	// route is the capture route of the pipeline last seen.
	route atomic.Pointer[pipelineRoute]
}

type pipelineRoute struct {
	p *pipeline.Pipeline
	r *capture.Route
}

func newCaptures(log *slog.Logger) *captures {
	return &captures{log: log.With("layer", "capture")}
}

// offer starts the exporter if need be and offers it it.
func (c *captures) offer(it capture.Item) {
	c.start.Do(func() { c.exporter.Store(capture.NewExporter(c.log, c.recorder)) })
	if x := c.exporter.Load(); x != nil { // nil when closed before it started
		x.Offer(it)
	}
}

// close stops the exporter, once it has sent what is queued.
func (c *captures) close() {
	c.start.Do(func() {}) // none starts after this
	if x := c.exporter.Load(); x != nil {
		x.Close()
	}
}

// CaptureCounts returns what the SIP capture did, for the metrics.
func (e *Engine) CaptureCounts() metrics.CaptureCounts {
	x := e.captures.exporter.Load()
	if x == nil {
		return metrics.CaptureCounts{}
	}
	c := x.Counts()
	return metrics.CaptureCounts{Sent: c.Sent, Written: c.Written, Dropped: c.Dropped}
}

// capture offers one message read (in) or written (out) to the exporter,
// when [capture] sends HEP or writes pcap files, or a recorder keeps the
// calls' messages.
func (e *Engine) capture(p *pipeline.Pipeline, dir, transport, laddr, raddr string, msg []byte) {
	if p.Config == nil {
		return
	}
	c := &p.Config.Capture
	if c.Address == "" && !c.Pcap && e.captures.recorder == nil {
		return
	}
	now := time.Now()
	it := capture.Item{Packet: capture.Packet{Time: now, Transport: transport, Payload: msg}, Route: e.captureRoute(p), Dir: dir}
	local, remote := captureAddr(p, it.Transport, laddr), captureAddr(p, it.Transport, raddr)
	if dir == "in" {
		it.Src, it.Dst = remote, local
		if transport == "TCP" { // TLS too: a read, not a message
			it.Conn = laddr + "|" + raddr
		}
	} else {
		it.Src, it.Dst = local, remote
	}
	e.captures.offer(it)
}

// captureAddr parses an address sipgo's tracer gave; a socket bound to
// all interfaces gives way to the advertised address, when it is an IP.
func captureAddr(p *pipeline.Pipeline, transport, s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().IsUnspecified() {
		return ap
	}
	host, _ := p.Advertised(transport)
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip, ap.Port())
	}
	return ap
}

// captureRoute returns the capture route of p, made once per pipeline:
// its settings, and the rules that pick what goes where.
func (e *Engine) captureRoute(p *pipeline.Pipeline) *capture.Route {
	if pr := e.captures.route.Load(); pr != nil && pr.p == p {
		return pr.r
	}
	c := p.Config.Capture
	parser := newParser() // used on the exporter's goroutine only
	r := &capture.Route{
		Address: c.Address,
		HEP:     capture.HEP{CaptureID: uint32(c.CaptureID), AuthKey: c.AuthKey},
		Select: func(msg []byte) (hep, pcap, traced bool) {
			var env *pipeline.Env
			parsed := false
			get := func() *pipeline.Env {
				if !parsed {
					parsed = true
					if m, err := parser.ParseSIP(msg); err == nil {
						env = p.MessageEnv(m)
					}
				}
				return env
			}
			traced = p.TracedMessage(get)
			return c.Address != "" && p.Captured(get), c.Pcap && traced, traced
		},
	}
	if c.Pcap {
		r.PcapDir = c.PcapDir
	}
	e.captures.route.Store(&pipelineRoute{p: p, r: r})
	return r
}

// Record makes the capture hand every message to rec as well, for the
// console's call ladders, and the transactions their stages' decisions.
// It is called before Start.
func (e *Engine) Record(rec *capture.Recorder) { e.captures.recorder = rec }
