// Package metrics holds Switchboard's Prometheus collectors. They are made
// and registered once per process and outlive every pipeline: a pipeline
// binds its stages' counters at build time, so that a message costs a few
// atomic adds.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the process's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	messages  *prometheus.CounterVec
	responses *prometheus.CounterVec
	// counters holds the counters of each label set seen (messageLabels
	// -> messageCounters): a message costs a map load and atomic adds,
	// not the label hashing of WithLabelValues.
	counters     sync.Map
	stageSeen    *prometheus.CounterVec
	stageVerdict *prometheus.CounterVec
	stageSeconds *prometheus.CounterVec
	ruleMatched  *prometheus.CounterVec
	ruleFailed   *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	configInfo   *prometheus.GaugeVec
	lastReload   prometheus.Gauge
	keepalives   *prometheus.CounterVec
	lateAnswers  *prometheus.CounterVec
}

// New makes and registers the collectors. gauges are read when scraped.
func New(g Gauges) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_messages_total",
			Help: "SIP messages received (in) and sent (out), by method and, for responses, status class.",
		}, []string{"direction", "method", "class"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_responses_total",
			Help: "SIP responses received (in) and sent (out), by CSeq method and status code (0: a code outside 100-699).",
		}, []string{"direction", "method", "code"}),
		stageSeen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_stage_messages_total",
			Help: "Messages each stage ran on (its rule matched), by stage and direction.",
		}, []string{"stage", "direction"}),
		stageVerdict: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_stage_verdicts_total",
			Help: "What each request stage decided: continue, replied, dropped, forwarded, error.",
		}, []string{"stage", "verdict"}),
		stageSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_stage_seconds_total",
			Help: "Time spent in each stage, in seconds.",
		}, []string{"stage"}),
		ruleMatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_rule_matches_total",
			Help: "Times each stage's `when` rule was true.",
		}, []string{"stage"}),
		ruleFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_rule_failures_total",
			Help: "Times each stage's `when` rule failed at run time (counted as no match).",
		}, []string{"stage"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_reloads_total",
			Help: "Config reloads, by outcome: applied, unchanged, failed.",
		}, []string{"outcome"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_config_info",
			Help: "The config in force: 1 for its hash.",
		}, []string{"hash"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_config_last_reload_timestamp_seconds",
			Help: "When the last reload was tried (Unix time).",
		}),
		keepalives:  newKeepalives(),
		lateAnswers: newLateAnswers(),
	}
	reg.MustRegister(m.messages, m.responses, m.stageSeen, m.stageVerdict, m.stageSeconds, m.ruleMatched, m.ruleFailed,
		m.reloads, m.configInfo, m.lastReload, m.keepalives, m.lateAnswers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		if f != nil {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
		}
	}
	gauge("switchboard_registrations", "Live bindings in the location store.", g.Bindings)
	gauge("switchboard_registered_aors", "Addresses-of-record with live bindings.", g.AORs)
	gauge("switchboard_active_calls", "Calls in progress in the call trackers.", g.Calls)
	gauge("switchboard_transactions_in_flight", "Server transactions without a final response yet.", g.Transactions)
	if g.CertificateExpiry != nil {
		reg.MustRegister(expiryCollector(g.CertificateExpiry))
	}
	if g.Capture != nil {
		reg.MustRegister(captureCollector(g.Capture))
	}
	if g.Destinations != nil {
		reg.MustRegister(destinationCollector(g.Destinations))
	}
	gauge("switchboard_transactions_lingering", "Server transactions answered and not yet ended, with their messages (50 ms after the final response, waiting for the ACK of a non-2xx, or for a cancelled branch).", g.Lingering)
	if g.Completed != nil {
		gauge("switchboard_transactions_completed", "Server transactions over UDP answered within server.linger, remembered by their key and final response to absorb retransmissions.", g.Completed)
	}
	gauge("switchboard_queue_delay_seconds", "The standing queueing delay over the last 100 ms: the least wait of messages in the busiest UDP socket, plus the least wait of requests for a worker. Above server.overload_delay for T1, new calls are refused 503.", g.QueueDelay)
	gauge("switchboard_overloaded", "1 while new calls are refused for a standing queue (server.overload_delay), else 0.", g.Overloaded)
	if g.OverloadRefused != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_overload_refused_total", Help: "New dialog-creating requests refused 503 for a standing queue (server.overload_delay)."}, g.OverloadRefused))
	}
	if g.UDPHeldBack != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_udp_held_back_total", Help: "UDP datagrams dropped unparsed because their source took more than half of a saturated socket reader (server.trusted_sources are never dropped)."}, g.UDPHeldBack))
	}
	return m
}

// Gauges are read at scrape time.
type Gauges struct {
	Bindings, AORs, Calls, Transactions, Lingering func() float64
	// Completed is optional: without it there is no such gauge.
	Completed func() float64
	// QueueDelay and Overloaded are optional: the standing delay of
	// messages, and whether new calls are shed for it.
	QueueDelay, Overloaded func() float64
	// OverloadRefused is optional: the requests shed, a counter.
	OverloadRefused func() float64
	// UDPHeldBack is optional: the datagrams the UDP readers' share
	// dropped, a counter.
	UDPHeldBack func() float64
	// CertificateExpiry returns when each TLS certificate presented
	// expires, by its file.
	CertificateExpiry func() map[string]time.Time
	// Capture returns what the SIP capture did.
	Capture func() CaptureCounts
	// Destinations returns the addresses of the destination sets.
	Destinations func() []Destination
}

// Message counts one SIP message. method is the request's, or the CSeq
// method of a response; code is 0 for requests.
func (m *Metrics) Message(direction, method string, code int) {
	if m == nil {
		return
	}
	method = methodLabel(method)
	key := messageLabels{direction, method, code, -1}
	if code > 0 {
		key.class = code / 100
	}
	if code != 0 && (code < 100 || code > 699) {
		key.code = -1
	}
	if c, ok := m.counters.Load(key); ok {
		c.(messageCounters).inc()
		return
	}
	c := messageCounters{}
	if code == 0 {
		c.class = m.messages.WithLabelValues(direction, method, "")
	} else {
		c.class = m.messages.WithLabelValues(direction, method, strconv.Itoa(key.class)+"xx")
		c.code = m.responses.WithLabelValues(direction, method, strconv.Itoa(max(key.code, 0)))
	}
	m.counters.Store(key, c)
	c.inc()
}

// messageCounters are the counters of one label set: by class and, for
// a response, by code.
type messageCounters struct{ class, code prometheus.Counter }

func (c messageCounters) inc() {
	c.class.Inc()
	if c.code != nil {
		c.code.Inc()
	}
}

// methodLabel is the method label of a message: one of RFC 3261's and
// its extensions', else OTHER, so that requests with made-up methods
// cannot make new series (nor new entries in counters).
func methodLabel(m string) string {
	switch m {
	case "INVITE", "ACK", "CANCEL", "BYE", "REGISTER", "OPTIONS", "SUBSCRIBE",
		"NOTIFY", "REFER", "INFO", "MESSAGE", "PRACK", "UPDATE", "PUBLISH":
		return m
	}
	return "OTHER"
}

// messageLabels are the labels of a message's counters: the status code
// (0 for requests, -1 for a code outside 100-699) and its class as its
// digit (-1 for requests).
type messageLabels struct {
	direction, method string
	code, class       int
}

// Reload records a reload's outcome and, when applied, the config's hash.
func (m *Metrics) Reload(outcome, hash string, at time.Time) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(outcome).Inc()
	m.lastReload.Set(float64(at.Unix()))
	if outcome == "applied" {
		m.Config(hash)
	}
}

// Config marks hash as the config in force.
func (m *Metrics) Config(hash string) {
	if m == nil {
		return
	}
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(hash).Set(1)
}

// Stage returns the counters of one stage, bound once at build time.
func (m *Metrics) Stage(label string) *Stage {
	if m == nil {
		return nil
	}
	return &Stage{
		requests:  m.stageSeen.WithLabelValues(label, "request"),
		responses: m.stageSeen.WithLabelValues(label, "response"),
		seconds:   m.stageSeconds.WithLabelValues(label),
		matched:   m.ruleMatched.WithLabelValues(label),
		failed:    m.ruleFailed.WithLabelValues(label),
		verdicts: [...]prometheus.Counter{
			m.stageVerdict.WithLabelValues(label, "continue"),
			m.stageVerdict.WithLabelValues(label, "replied"),
			m.stageVerdict.WithLabelValues(label, "dropped"),
			m.stageVerdict.WithLabelValues(label, "forwarded"),
		},
		errors: m.stageVerdict.WithLabelValues(label, "error"),
	}
}

// Stage holds one stage's counters. A nil *Stage counts nothing.
type Stage struct {
	requests, responses prometheus.Counter
	seconds             prometheus.Counter
	matched, failed     prometheus.Counter
	verdicts            [4]prometheus.Counter
	errors              prometheus.Counter
}

// Ran counts a run of the stage on a request (response false) or a
// response, its verdict index (0-3 as pipeline.Verdict, -1 for a response),
// whether it failed, and its time.
func (s *Stage) Ran(response bool, verdict int, failed bool, d time.Duration) {
	if s == nil {
		return
	}
	if response {
		s.responses.Inc()
	} else {
		s.requests.Inc()
		switch {
		case failed:
			s.errors.Inc()
		case verdict >= 0 && verdict < len(s.verdicts):
			s.verdicts[verdict].Inc()
		}
	}
	s.seconds.Add(d.Seconds())
}

// Rule counts a run of the stage's rule.
func (s *Stage) Rule(matched, failed bool) {
	if s == nil {
		return
	}
	if failed {
		s.failed.Inc()
	}
	if matched {
		s.matched.Inc()
	}
}
