package destinations

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

func response(code int, retryAfter string) *sip.Response {
	res := sip.NewResponse(code, "x")
	if retryAfter != "" {
		res.AppendHeader(sip.NewHeader("Retry-After", retryAfter))
	}
	return res
}

// TestPassive checks how live requests change an address's health: down
// after DownAfter failures in a row, out for a 503's Retry-After, and a
// success in between resets the count.
func TestPassive(t *testing.T) {
	hop := "127.0.0.1:5081"
	tests := []struct {
		answers []*sip.Response // nil: no answer
		alive   bool
		back    time.Duration
	}{
		{[]*sip.Response{nil, nil}, true, 0},
		{[]*sip.Response{nil, nil, nil}, false, 0},
		{[]*sip.Response{nil, nil, response(486, ""), nil}, true, 0},
		{[]*sip.Response{response(503, "")}, true, 0},
		{[]*sip.Response{response(503, "60")}, false, 60 * time.Second},
		{[]*sip.Response{response(503, "60;duration=10 (maintenance)")}, false, 60 * time.Second},
		{[]*sip.Response{response(500, "60")}, true, 0},
	}
	now := time.Unix(1000, 0)
	for i, tc := range tests {
		s := testSet(t, "round_robin", []int{1}, []int{0})
		d := s.Destinations[0]
		d.now = func() time.Time { return now }
		d.Configure(1, 0, Check{Interval: time.Second, DownAfter: 3, UpAfter: 2})
		for _, res := range tc.answers {
			d.Attempted(hop)
			d.Answered(hop, res)
		}
		if d.Alive() != tc.alive || d.Back() != tc.back || d.InProgress() != 0 {
			t.Errorf("test %d: alive %v back %s in progress %d, want %v %s 0", i, d.Alive(), d.Back(), d.InProgress(), tc.alive, tc.back)
		}
	}
}

// fakeOutbound answers checks with code (0: no answer) and resolves every
// name to addrs.
type fakeOutbound struct {
	code  int
	addrs []resolve.Target
}

func (f *fakeOutbound) Resolve(context.Context, *sip.Uri) ([]resolve.Target, error) {
	return f.addrs, nil
}

func (f *fakeOutbound) Options(_ context.Context, _ sip.Uri, _ sip.Uri, hop resolve.Target) (*sip.Response, error) {
	if f.code == 0 || hop.Addr.Port() == 1 {
		return nil, errors.New("timeout")
	}
	return response(f.code, ""), nil
}

// TestChecks runs checks: down after DownAfter failures, up after
// UpAfter successes, only the alive codes count, and each address of a
// name has its own health.
func TestChecks(t *testing.T) {
	tests := []struct {
		codes []int // the answers, check by check
		alive []int
		want  []bool // alive after each check
	}{
		{[]int{0, 0, 200, 200, 200}, nil, []bool{true, false, false, true, true}},
		{[]int{503, 503}, nil, []bool{true, true}},
		{[]int{503, 503, 200}, []int{200}, []bool{true, false, false}},
	}
	for i, tc := range tests {
		out := &fakeOutbound{}
		var u sip.Uri
		_ = sip.ParseUri("sip:127.0.0.1:5081", &u)
		d := New("gw", u, out, nil, slog.Default())
		d.Configure(1, 0, Check{Interval: time.Second, Timeout: time.Second, DownAfter: 2, UpAfter: 2, AliveCodes: tc.alive})
		for j, code := range tc.codes {
			out.code = code
			d.checkOnce()
			if d.Alive() != tc.want[j] {
				t.Errorf("test %d: after check %d (%d): alive %v, want %v", i, j+1, code, d.Alive(), tc.want[j])
			}
		}
	}

	// A name with two addresses, one of which never answers.
	out := &fakeOutbound{code: 200, addrs: []resolve.Target{
		{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Transport: "UDP"},
		{Addr: netip.MustParseAddrPort("127.0.0.1:5060"), Transport: "UDP"},
	}}
	var u sip.Uri
	_ = sip.ParseUri("sip:gw.test", &u)
	d := New("gw", u, out, nil, slog.Default())
	d.Configure(1, 0, Check{Interval: time.Second, Timeout: time.Second, DownAfter: 1, UpAfter: 1})
	d.checkOnce()
	hops := d.Hops()
	if !d.Alive() || len(hops) != 1 || hops[0].Addr.Port() != 5060 {
		t.Errorf("alive %v, hops %v: want the answering address only", d.Alive(), hops)
	}
}

// TestResolveWithoutChecks: with checks off and Resolve set, a named
// destination learns its addresses in the background, for source.set,
// and sends no OPTIONS.
func TestResolveWithoutChecks(t *testing.T) {
	out := &fakeOutbound{code: 200, addrs: []resolve.Target{{Addr: netip.MustParseAddrPort("192.0.2.7:5060"), Transport: "UDP"}}}
	var u sip.Uri
	_ = sip.ParseUri("sip:trunk.test", &u)
	d := New("provider", u, out, nil, slog.Default())
	d.Configure(0, 0, Check{Resolve: time.Minute})
	d.Start()
	defer func() { _ = d.Close(); <-d.done }()
	for deadline := time.Now().Add(5 * time.Second); !d.HasAddr(netip.MustParseAddr("192.0.2.7")); {
		if time.Now().After(deadline) {
			t.Fatal("the trunk's name was not resolved")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d.HasAddr(netip.MustParseAddr("192.0.2.8")) {
		t.Error("an address the name does not resolve to counts as the trunk's")
	}
	if s := d.State(); len(s.Addresses) != 1 || !s.Addresses[0].Checked.IsZero() {
		t.Errorf("state %+v: want one address, never checked", s)
	}
}
