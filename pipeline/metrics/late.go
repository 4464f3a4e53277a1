package metrics

import "github.com/prometheus/client_golang/prometheus"

// What the proxy did with a late answer from an address it gave up on
// (failover, or fr_timeout with no provisional response): the values of
// switchboard_late_answers_total's action label.
const (
	// LateCancelled is a provisional response answered with a CANCEL.
	LateCancelled = "cancelled"
	// LateHungUp is a 2xx to an INVITE, ACKed and ended with a BYE.
	LateHungUp = "hung_up"
	// LateAbsorbed is another final response, ACKed where it is an
	// INVITE's, and dropped.
	LateAbsorbed = "absorbed"
)

// newLateAnswers makes the late answer counter, with every action at 0.
func newLateAnswers() *prometheus.CounterVec {
	return newCounterOf("switchboard_late_answers_total",
		"Answers from an address the proxy gave up on (failover, or fr_timeout with no provisional response), by what it did: cancelled (a provisional response, CANCEL sent), hung_up (a 2xx, ACK and BYE sent), absorbed (another final, ACKed if an INVITE's). None reaches the caller.",
		"action", LateCancelled, LateHungUp, LateAbsorbed)
}

// LateAnswer counts one late answer (LateCancelled, ...).
func (m *Metrics) LateAnswer(action string) {
	if m == nil {
		return
	}
	m.lateAnswers.WithLabelValues(action).Inc()
}
