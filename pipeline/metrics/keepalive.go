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
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_keepalives_total",
		Help: "NAT keepalives, by event: ping (OPTIONS sent), answer (a response to one), removed (a binding that left them unanswered), stun (a STUN Binding request answered).",
	}, []string{"event"})
	for _, e := range []string{KeepalivePing, KeepaliveAnswer, KeepaliveRemoved, KeepaliveSTUN} {
		v.WithLabelValues(e)
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
