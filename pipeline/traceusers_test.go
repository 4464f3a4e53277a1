package pipeline

import (
	"slices"
	"testing"
)

func TestTraceUsers(t *testing.T) {
	env := &Env{From: PartyEnv{User: "alice", Host: "sip.test"}, To: PartyEnv{User: "bob", Host: "sip.test"}}
	env.Request.URI = URIEnv{User: "bob", Host: "192.0.2.1"}
	tests := []struct {
		on, off []string
		want    bool
		list    []string
	}{
		{nil, nil, false, nil},
		{[]string{"carol"}, nil, false, []string{"carol"}},
		{[]string{"Alice"}, nil, true, []string{"alice", "carol"}},
		{nil, []string{"alice"}, false, []string{"carol"}},
		{[]string{"bob@192.0.2.1"}, []string{"carol"}, true, []string{"bob@192.0.2.1"}}, // the Request-URI
		{[]string{"bob@other.test"}, []string{"bob@192.0.2.1"}, false, []string{"bob@other.test"}},
		{[]string{"alice@sip.test"}, []string{"bob@other.test"}, true, []string{"alice@sip.test"}},
		{nil, []string{"alice@sip.test"}, false, nil},
	}
	tr := &TraceUsers{}
	for i, tc := range tests {
		for _, u := range tc.on {
			tr.Set(u, true)
		}
		for _, u := range tc.off {
			tr.Set(u, false)
		}
		calls := 0
		got := tr.Match(func() *Env { calls++; return env })
		if got != tc.want {
			t.Errorf("test %d: Match %t, want %t", i, got, tc.want)
		}
		if len(tc.list) == 0 && calls > 0 {
			t.Errorf("test %d: the environment was built with no one traced", i)
		}
		if !slices.Equal(tr.List(), tc.list) {
			t.Errorf("test %d: List %v, want %v", i, tr.List(), tc.list)
		}
	}
	var none *TraceUsers
	if none.Match(func() *Env { return env }) || none.List() != nil {
		t.Error("a nil TraceUsers traces someone")
	}
}

// TestTracedLive checks that a user traced live turns both traces on for
// the user's messages while [log] has them off.
func TestTracedLive(t *testing.T) {
	svc := &Services{Traces: &TraceUsers{}}
	p := &Pipeline{Services: svc}
	alice := func() *Env { return &Env{From: PartyEnv{User: "alice"}} }
	bob := func() *Env { return &Env{From: PartyEnv{User: "bob"}} }
	if p.Traced(alice) || p.TracedMessage(alice) {
		t.Fatal("traced with the traces off")
	}
	svc.Traces.Set("alice", true)
	if !p.Traced(alice) || !p.TracedMessage(alice) {
		t.Error("alice traced live: not traced")
	}
	if p.Traced(bob) || p.TracedMessage(bob) {
		t.Error("bob traced with only alice on")
	}
}
