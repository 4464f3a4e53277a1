package metrics

import "github.com/prometheus/client_golang/prometheus"

// Keepalive events, the values of switchboard_keepalives_total's event
// label.
const (
	// KeepalivePing is an OPTIONS ping sent to a binding behind NAT.
	KeepalivePing = "ping"
	// KeepaliveAnswer is a response to a ping, of any status.
	KeepaliveAnswer = "answer"
	// KeepaliveRemoved is a binding removed for leaving its pings
	// unanswered.
	KeepaliveRemoved = "removed"
	// KeepaliveSTUN is a STUN Binding request answered on a SIP UDP port.
	KeepaliveSTUN = "stun"
)

// newKeepalives makes the keepalive counter, with every event at 0.
func newKeepalives() *prometheus.CounterVec {
	return newCounterOf("switchboard_keepalives_total",
		"NAT keepalives, by event: ping (OPTIONS sent), answer (a response to one), removed (a binding that left them unanswered), stun (a STUN Binding request answered).",
		"event", KeepalivePing, KeepaliveAnswer, KeepaliveRemoved, KeepaliveSTUN)
}

// newCounterOf makes a counter with one label, at 0 for each of values:
// every series shows in a scrape before its first count.
func newCounterOf(name, help, label string, values ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	for _, val := range values {
		v.WithLabelValues(val)
	}
	return v
}

// Keepalive counts one keepalive event (KeepalivePing, ...).
func (m *Metrics) Keepalive(event string) {
	if m == nil {
		return
	}
	m.keepalives.WithLabelValues(event).Inc()
}
