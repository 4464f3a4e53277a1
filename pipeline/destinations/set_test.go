package destinations

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func testSet(t *testing.T, algorithm string, weights, priorities []int) *Set {
	t.Helper()
	s := &Set{Name: "gw", Algorithm: algorithm, Attempts: 10}
	for i := range weights {
		var u sip.Uri
		if err := sip.ParseUri(fmt.Sprintf("sip:127.0.0.1:%d", 5081+i), &u); err != nil {
			t.Fatal(err)
		}
		d := New("gw", u, nil, nil, slog.Default())
		d.Configure(weights[i], priorities[i], Check{DownAfter: 1, UpAfter: 1, Interval: time.Second})
		s.Destinations = append(s.Destinations, d)
	}
	return s
}

func request(callID, from, to string) *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: to, Host: "example.org"})
	id := sip.CallIDHeader(callID)
	req.AppendHeader(&id)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: "example.org"}, Params: sip.NewParams()})
	return req
}

// firsts counts, over n requests, how often each destination comes first.
func firsts(s *Set, n int, req func(i int) *sip.Request) []int {
	out := make([]int, len(s.Destinations))
	for i := range n {
		order := s.Order(req(i))
		for j, d := range s.Destinations {
			if len(order) > 0 && order[0] == d {
				out[j]++
			}
		}
	}
	return out
}

func TestOrder(t *testing.T) {
	same := func(int) *sip.Request { return request("one-call", "alice", "0123") }
	calls := func(i int) *sip.Request { return request(fmt.Sprintf("call-%d", i), "alice", "0123") }
	tests := []struct {
		algorithm  string
		weights    []int
		priorities []int
		req        func(int) *sip.Request
		down       []int // destinations marked down
		want       []int // how often each comes first in 100 requests
	}{
		{"round_robin", []int{1, 1, 1, 1}, []int{0, 0, 0, 0}, calls, nil, []int{25, 25, 25, 25}},
		{"round_robin", []int{1, 1, 1, 1}, []int{0, 0, 0, 0}, calls, []int{1}, []int{34, 0, 33, 33}},
		{"weighted", []int{1, 3}, []int{0, 0}, calls, nil, []int{25, 75}},
		{"weighted", []int{2, 2, 1}, []int{0, 0, 0}, calls, nil, []int{40, 40, 20}},
		{"weighted", []int{1, 3}, []int{0, 0}, calls, []int{1}, []int{100, 0}},
		{"priority", []int{1, 1, 1}, []int{3, 1, 2}, calls, nil, []int{0, 100, 0}},
		{"priority", []int{1, 1, 1}, []int{3, 1, 2}, calls, []int{1}, []int{0, 0, 100}},
		{"hash_call_id", []int{1, 1, 1}, []int{0, 0, 0}, same, nil, nil}, // sticky: one gets all
		{"hash_caller", []int{1, 1, 1}, []int{0, 0, 0}, calls, nil, nil}, // one caller: one gets all
		{"hash_callee", []int{1, 1, 1}, []int{0, 0, 0}, calls, nil, nil}, // one callee: one gets all
		{"least_calls", []int{1, 1, 1}, []int{0, 0, 0}, calls, nil, []int{34, 33, 33}},
	}
	for i, tc := range tests {
		s := testSet(t, tc.algorithm, tc.weights, tc.priorities)
		for _, d := range tc.down {
			s.Destinations[d].Drain(true)
		}
		got := firsts(s, 100, tc.req)
		if tc.want == nil { // sticky: all to one
			max := 0
			for _, n := range got {
				max = maxInt(max, n)
			}
			if max != 100 {
				t.Errorf("test %d (%s): firsts %v, want all on one destination", i, tc.algorithm, got)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("test %d (%s): firsts %v, want %v", i, tc.algorithm, got, tc.want)
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// TestHashSpread checks that distinct Call-IDs spread over the set, and
// that only the calls of a destination that goes down move.
func TestHashSpread(t *testing.T) {
	s := testSet(t, "hash_call_id", []int{1, 1, 1}, []int{0, 0, 0})
	before := map[string]*Destination{}
	counts := map[*Destination]int{}
	for i := range 3000 {
		id := fmt.Sprintf("call-%d", i)
		d := s.Order(request(id, "a", "b"))[0]
		before[id] = d
		counts[d]++
	}
	for d, n := range counts {
		if n < 900 || n > 1100 {
			t.Errorf("%s got %d of 3000 calls, want about 1000", d.URI.String(), n)
		}
	}
	s.Destinations[0].Drain(true)
	for id, was := range before {
		now := s.Order(request(id, "a", "b"))[0]
		if was != s.Destinations[0] && now != was {
			t.Fatalf("call %s moved from %s to %s though its destination stayed up", id, was.URI.String(), now.URI.String())
		}
	}
}

// TestLeastCalls sends to the destination with the fewest requests in
// progress.
func TestLeastCalls(t *testing.T) {
	s := testSet(t, "least_calls", []int{1, 1, 1}, []int{0, 0, 0})
	s.Destinations[0].Attempted("")
	s.Destinations[0].Attempted("")
	s.Destinations[2].Attempted("")
	if got := s.Order(request("x", "a", "b"))[0]; got != s.Destinations[1] {
		t.Errorf("first %s, want the idle one", got.URI.String())
	}
}

// TestAttempts bounds the order to the set's attempts, and an all-down
// set gives none.
func TestAttempts(t *testing.T) {
	s := testSet(t, "round_robin", []int{1, 1, 1}, []int{0, 0, 0})
	s.Attempts = 2
	if n := len(s.Order(request("x", "a", "b"))); n != 2 {
		t.Errorf("%d destinations, want 2", n)
	}
	for _, d := range s.Destinations {
		d.Drain(true)
	}
	if n := len(s.Order(request("x", "a", "b"))); n != 0 {
		t.Errorf("%d destinations of a drained set, want 0", n)
	}
}
