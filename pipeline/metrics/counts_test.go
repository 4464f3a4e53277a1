package metrics

import (
	"reflect"
	"testing"
	"time"
)

func TestCounts(t *testing.T) {
	m := New(Gauges{})
	for _, s := range []struct {
		direction, method string
		code              int
	}{
		{"in", "INVITE", 0}, {"in", "INVITE", 0}, {"out", "INVITE", 180}, {"out", "INVITE", 486},
		{"out", "INVITE", 486}, {"in", "REGISTER", 0}, {"out", "REGISTER", 200}, {"in", "BYE", 999},
	} {
		m.Message(s.direction, s.method, s.code)
	}
	reg := m.Stage("2:registrar")
	reg.Rule(true, false)
	reg.Ran(false, 1, false, time.Millisecond)
	fwd := m.Stage("10:forward")
	fwd.Ran(false, 3, false, time.Millisecond)
	fwd.Ran(true, -1, false, time.Millisecond)
	got, err := m.Counts()
	if err != nil {
		t.Fatal(err)
	}
	wantMessages := []MessageCount{
		{"in", "BYE", -1, 1},
		{"in", "INVITE", 0, 2},
		{"in", "REGISTER", 0, 1},
		{"out", "INVITE", 180, 1},
		{"out", "INVITE", 486, 2},
		{"out", "REGISTER", 200, 1},
	}
	if !reflect.DeepEqual(got.Messages, wantMessages) {
		t.Errorf("messages:\n got %v\nwant %v", got.Messages, wantMessages)
	}
	wantStages := []StageCount{
		{Stage: "2:registrar", Requests: 1, Verdicts: map[string]uint64{"replied": 1}, RuleMatches: 1},
		{Stage: "10:forward", Requests: 1, Responses: 1, Verdicts: map[string]uint64{"forwarded": 1}},
	}
	if !reflect.DeepEqual(got.Stages, wantStages) {
		t.Errorf("stages:\n got %+v\nwant %+v", got.Stages, wantStages)
	}
	var none *Metrics
	if c, err := none.Counts(); err != nil || len(c.Messages) != 0 {
		t.Errorf("nil metrics: %v %v", c, err)
	}
}
