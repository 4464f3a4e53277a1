package callforward

import (
	"testing"

	loc "github.com/switchboard-sip/switchboard/pipeline/location"
)

func TestQOf(t *testing.T) {
	tests := []struct {
		params string
		want   int
	}{
		{"", 1000},
		{"q=0.5", 500},
		{"expires=60;q=0.25", 250},
		{" Q = 0.1 ", 100},
		{"q=1", 1000},
		{"q=0", 0},
		{"q=2", 1000},
		{"q=x", 1000},
		{"+sip.instance=\"<urn:uuid:1>\";reg-id=1", 1000},
	}
	for i, tc := range tests {
		if got := qOf(loc.Binding{Params: tc.params}); got != tc.want {
			t.Errorf("test %d: qOf(%q) = %d, want %d", i, tc.params, got, tc.want)
		}
	}
}
