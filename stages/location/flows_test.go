package location

import (
	"fmt"
	"testing"
	"time"

	loc "github.com/switchboard-sip/switchboard/pipeline/location"
)

func TestNewestFlowsFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := func(name, instance, regID string, age time.Duration) loc.Binding {
		params := ""
		if regID != "" {
			params = "reg-id=" + regID
		}
		return loc.Binding{Contact: name, Instance: instance, Params: params, Updated: t0.Add(-age)}
	}
	tests := []struct {
		in   []loc.Binding
		want string
	}{
		{nil, "[]"},
		{[]loc.Binding{b("a", "", "", 0), b("b", "", "", time.Hour)}, "[a b]"},
		// Two flows of i1, the newer second: they swap places; the
		// plain binding between them stays.
		{[]loc.Binding{b("old", "i1", "1", time.Hour), b("plain", "", "", 0), b("new", "i1", "2", 0)}, "[new plain old]"},
		// Flows of two instances are ordered apart; a binding with an
		// instance but no reg-id is no flow.
		{[]loc.Binding{b("x1", "i1", "1", 2*time.Hour), b("y1", "i2", "1", 0), b("x2", "i1", "2", time.Hour), b("y2", "i2", "2", time.Hour), b("z", "i1", "", 0)}, "[x2 y1 x1 y2 z]"},
	}
	for i, tc := range tests {
		var got []string
		for _, b := range newestFlowsFirst(tc.in) {
			got = append(got, b.Contact)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("test %d: %v, want %s", i, got, tc.want)
		}
	}
}

func TestTargetInstance(t *testing.T) {
	tests := []struct {
		b    loc.Binding
		want string
	}{
		{loc.Binding{Contact: "sip:a@192.0.2.1", Instance: "<urn:uuid:1>", Params: `+sip.instance="<urn:uuid:1>";reg-id=1`}, "<urn:uuid:1>"},
		{loc.Binding{Contact: "sip:a@192.0.2.1", Instance: "<urn:uuid:1>", Params: `+sip.instance="<urn:uuid:1>"`}, ""},
		{loc.Binding{Contact: "sip:a@192.0.2.1"}, ""},
	}
	for i, tc := range tests {
		got, err := Target(tc.b)
		if err != nil || got.Instance != tc.want {
			t.Errorf("test %d: instance %q (%v), want %q", i, got.Instance, err, tc.want)
		}
	}
}
