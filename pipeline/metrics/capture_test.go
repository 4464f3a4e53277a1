package metrics

import (
	"testing"
)

func TestCaptureCounts(t *testing.T) {
	m := New(Gauges{Capture: func() CaptureCounts {
		return CaptureCounts{Sent: 5, Written: 2, Dropped: map[string]uint64{"queue": 3, "send": 1}}
	}})
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[key] = mt.GetCounter().GetValue()
		}
	}
	tests := []struct {
		name string
		want float64
	}{
		{"switchboard_capture_hep_sent_total", 5},
		{"switchboard_capture_pcap_written_total", 2},
		{"switchboard_capture_dropped_total{reason=queue}", 3},
		{"switchboard_capture_dropped_total{reason=send}", 1},
	}
	for i, tc := range tests {
		if v, ok := got[tc.name]; !ok || v != tc.want {
			t.Errorf("test %d: %s = %v (present %v), want %v", i, tc.name, v, ok, tc.want)
		}
	}
}
