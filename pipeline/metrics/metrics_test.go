package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// value reads a counter of m.messages.
func value(t *testing.T, m *Metrics, direction, method, class string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.messages.WithLabelValues(direction, method, class).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetCounter().GetValue()
}

func TestMessage(t *testing.T) {
	m := New(Gauges{})
	seen := []struct {
		direction, method string
		code              int
	}{
		{"in", "INVITE", 0}, {"in", "INVITE", 0}, {"out", "INVITE", 0},
		{"in", "INVITE", 180}, {"in", "INVITE", 200}, {"in", "INVITE", 202}, {"out", "INVITE", 486},
		{"in", "BYE", 0}, {"in", "BYE", 200},
		{"in", "FOO", 0}, {"in", "BAR", 0}, {"out", "FOO", 501},
	}
	for _, s := range seen {
		m.Message(s.direction, s.method, s.code)
	}
	tests := []struct {
		direction, method, class string
		want                     float64
	}{
		{"in", "INVITE", "", 2},
		{"out", "INVITE", "", 1},
		{"in", "INVITE", "1xx", 1},
		{"in", "INVITE", "2xx", 2},
		{"out", "INVITE", "4xx", 1},
		{"in", "BYE", "", 1},
		{"in", "BYE", "2xx", 1},
		{"out", "BYE", "", 0},
		{"in", "OTHER", "", 2}, // made-up methods share one series
		{"out", "OTHER", "5xx", 1},
		{"in", "FOO", "", 0},
	}
	for _, tt := range tests {
		if got := value(t, m, tt.direction, tt.method, tt.class); got != tt.want {
			t.Errorf("messages{%s,%s,%q} = %g, want %g", tt.direction, tt.method, tt.class, got, tt.want)
		}
	}
	n := 0
	m.counters.Range(func(k, _ any) bool {
		if k.(messageLabels).method == "FOO" || k.(messageLabels).method == "BAR" {
			t.Errorf("counters holds %+v: a made-up method kept", k)
		}
		n++
		return true
	})
	if n != 10 {
		t.Errorf("counters holds %d label sets, want 10", n)
	}
	var nilMetrics *Metrics
	nilMetrics.Message("in", "INVITE", 0) // no collectors: no panic
}

func TestLateAnswer(t *testing.T) {
	m := New(Gauges{})
	for _, a := range []string{LateCancelled, LateHungUp, LateHungUp} {
		m.LateAnswer(a)
	}
	(*Metrics)(nil).LateAnswer(LateAbsorbed) // counts nothing, and does not panic
	tests := []struct {
		action string
		want   float64
	}{
		{LateCancelled, 1},
		{LateHungUp, 2},
		{LateAbsorbed, 0},
	}
	for i, tc := range tests {
		var out dto.Metric
		if err := m.lateAnswers.WithLabelValues(tc.action).Write(&out); err != nil {
			t.Fatal(err)
		}
		if got := out.GetCounter().GetValue(); got != tc.want {
			t.Errorf("test %d: late_answers{action=%q} = %g, want %g", i, tc.action, got, tc.want)
		}
	}
}
