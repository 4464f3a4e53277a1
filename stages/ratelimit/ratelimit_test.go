package ratelimit

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// t0 is when the tests start.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a ratelimit stage whose State runs on a clock the test
// moves, over services the test keeps for the next pipeline.
type fixture struct {
	*stagetest.Harness
	svc   *pipeline.Services
	state *State
	clock *stagetest.Clock
}

func newFixture(t testing.TB, keys string) *fixture {
	t.Helper()
	f := &fixture{svc: &pipeline.Services{}, clock: stagetest.NewClock(t0)}
	t.Cleanup(func() { _ = f.svc.Close() })
	f.Harness = f.reload(t, keys)
	v, ok := f.svc.Shared.Load(StateKey)
	if !ok {
		t.Fatal("no State shared")
	}
	f.state = v.(*State)
	return f
}

// reload builds another pipeline over the same services.
func (f *fixture) reload(t testing.TB, keys string) *stagetest.Harness {
	t.Helper()
	return stagetest.Stage(t, "ratelimit", keys, stagetest.WithServices(f.svc), stagetest.WithTime(f.clock.Now))
}

// packet sends one packet from src at t0+at.
func (f *fixture) packet(h *stagetest.Harness, src string, at time.Duration) bool {
	f.clock.Set(t0.Add(at))
	return h.Pipeline.AllowPacket(netip.MustParseAddrPort(src), "UDP")
}

func (f *fixture) failures(t testing.TB) *Failures {
	t.Helper()
	v, ok := f.svc.Shared.Load(FailuresKey)
	if !ok {
		t.Fatal("no Failures shared")
	}
	return v.(*Failures)
}

const (
	a = "198.51.100.1:5060"
	b = "198.51.100.2:5060"
	c = "192.0.2.5:5060"
	d = "[2001:db8::5]:5060"
)

// event is a packet and whether it should get through.
type event struct {
	src  string
	at   time.Duration
	want bool
}

func TestAllowPacket(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		keys   string
		events []event
	}{
		{"under the rate", "rate = 3", []event{{a, 0, true}, {a, 500 * ms, true}, {a, 1999 * ms, true}}},
		{"over the rate", "rate = 3", []event{{a, 0, true}, {a, 1, true}, {a, 2, true}, {a, 3, false}, {a, 4, false}, {b, 5, true}}},
		{"a new window", "rate = 3", []event{{a, 0, true}, {a, 1, true}, {a, 2, true}, {a, 2 * time.Second, true}, {a, 2*time.Second + 1, true}, {a, 2*time.Second + 2, true}, {a, 2*time.Second + 3, false}}},
		{"window", `rate = 2` + "\n" + `window = "10s"`, []event{{a, 0, true}, {a, 5 * time.Second, true}, {a, 9 * time.Second, false}}},
		{"the ban ends", "rate = 1\nban = \"10s\"", []event{{a, 0, true}, {a, 100 * ms, false}, {a, 5 * time.Second, false}, {a, 10*time.Second + 99*ms, false}, {a, 10*time.Second + 100*ms, true}, {a, 10*time.Second + 200*ms, false}}},
		{"banned packets do not lengthen the ban", "rate = 1\nban = \"10s\"", []event{{a, 0, true}, {a, 1, false}, {a, 9 * time.Second, false}, {a, 10*time.Second + 1, true}}},
		{"sources are apart", "rate = 1", []event{{a, 0, true}, {b, 0, true}, {a, 1, false}, {b, 2, false}, {d, 3, true}, {c, 4, true}}},
		{"IPv4-mapped is IPv4", "rate = 1", []event{{a, 0, true}, {"[::ffff:198.51.100.1]:5061", 1, false}}},
		{"allow-list", `rate = 1` + "\n" + `allow = ["192.0.2.0/24", "2001:db8::5", "::ffff:198.51.100.2/128"]`, []event{
			{c, 0, true}, {c, 1, true}, {c, 2, true}, {d, 3, true}, {d, 4, true}, {b, 5, true}, {b, 6, true}, {a, 7, true}, {a, 8, false}}},
		{"reply lets banned packets through", "rate = 1\naction = \"reply\"", []event{{a, 0, true}, {a, 1, true}, {a, 2, true}}},
	}
	for i, tc := range tests {
		f := newFixture(t, tc.keys)
		for j, e := range tc.events {
			if got := f.packet(f.Harness, e.src, e.at); got != e.want {
				t.Errorf("test %d (%s): packet %d from %s at %s: allowed %v, want %v", i, tc.name, j, e.src, e.at, got, e.want)
			}
		}
	}
}

// invite is a new call from a.
const invite = `
INVITE sip:bob@example.org SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.org>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 1 INVITE
`

func TestServeRequest(t *testing.T) {
	ack := strings.NewReplacer("INVITE sip", "ACK sip", "1 INVITE", "1 ACK").Replace(invite)
	tests := []struct {
		name    string
		keys    string
		raw     string
		from    string
		at      time.Duration // after the ban
		verdict pipeline.Verdict
		retry   string
	}{
		{name: "reply", keys: `action = "reply"`, raw: invite, from: a, verdict: pipeline.Replied, retry: "60"},
		{name: "reply later", keys: `action = "reply"`, raw: invite, from: a, at: 10*time.Second + 500*time.Millisecond, verdict: pipeline.Replied, retry: "50"},
		{name: "reply, last second", keys: `action = "reply"`, raw: invite, from: a, at: 59*time.Second + 999*time.Millisecond, verdict: pipeline.Replied, retry: "1"},
		{name: "reply, ban over", keys: `action = "reply"`, raw: invite, from: a, at: 60 * time.Second, verdict: pipeline.Continue},
		{name: "reply, ban", keys: `action = "reply"` + "\n" + `ban = "5m"`, raw: invite, from: a, verdict: pipeline.Replied, retry: "300"},
		{name: "reply, ACK", keys: `action = "reply"`, raw: ack, from: a, verdict: pipeline.Dropped},
		{name: "reply, another source", keys: `action = "reply"`, raw: invite, from: b, verdict: pipeline.Continue},
		{name: "drop", raw: invite, from: a, verdict: pipeline.Dropped},
		{name: "drop, another source", raw: invite, from: b, verdict: pipeline.Continue},
		{name: "allowed", keys: `action = "reply"` + "\n" + `allow = ["198.51.100.0/24"]`, raw: invite, from: a, verdict: pipeline.Continue},
	}
	for i, tc := range tests {
		f := newFixture(t, "rate = 1\n"+tc.keys)
		f.packet(f.Harness, a, 0)
		f.packet(f.Harness, a, 0) // banned from t0
		f.clock.Set(t0.Add(tc.at))
		res := f.Request(stagetest.Request(t, tc.raw), stagetest.From(tc.from), stagetest.At(t0.Add(tc.at)))
		if res.Err != nil || res.Verdict != tc.verdict {
			t.Errorf("test %d (%s): %s, want %s", i, tc.name, res, tc.verdict)
			continue
		}
		if tc.verdict == pipeline.Replied {
			if res.Code() != 503 || res.Reason() != "Service Unavailable" || res.Header("Retry-After") != tc.retry {
				t.Errorf("test %d (%s): %d %s, Retry-After %q, want 503 with %q", i, tc.name, res.Code(), res.Reason(), res.Header("Retry-After"), tc.retry)
			}
		}
		if !res.Changed().Empty() {
			t.Errorf("test %d (%s): the request changed:\n%s", i, tc.name, res.Changed())
		}
	}
}

// addr returns the i-th of many distinct addresses, IPv4 and IPv6.
func addr(i int) netip.AddrPort {
	if i%2 == 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 0x0a000000+uint32(i))
		return netip.AddrPortFrom(netip.AddrFrom4(b), 5060)
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return netip.AddrPortFrom(netip.AddrFrom16(b), 5060)
}

// TestMemoryBound sends packets from ten times max_sources sources: the
// table never holds more than max_sources, and keeps the newest.
func TestMemoryBound(t *testing.T) {
	for _, max := range []int{1, 7, 64, 1000} {
		f := newFixture(t, "rate = 1\nmax_sources = "+strconv.Itoa(max))
		for i := 0; i < 10*max; i++ {
			f.clock.Set(t0.Add(time.Duration(i)))
			f.Pipeline.AllowPacket(addr(i), "UDP")
			if n := f.state.Sources(); n > max {
				t.Fatalf("max_sources %d: %d sources after %d packets", max, n, i+1)
			}
		}
		if n, ev := f.state.Sources(), f.state.Evicted(); int64(n)+ev != int64(10*max) {
			t.Errorf("max_sources %d: %d sources and %d evicted, want %d in all", max, n, ev, 10*max)
		}
		// The newest source is kept: its second packet is over the rate.
		last := addr(10*max - 1)
		if f.Pipeline.AllowPacket(last, "UDP") {
			t.Errorf("max_sources %d: the newest source was forgotten", max)
		}
	}
}

// TestSmallTableKeepsAll checks that a table holds as many sources as its
// capacity before it forgets any: a ban must not be lost to a few
// unrelated sources that share its shard.
func TestSmallTableKeepsAll(t *testing.T) {
	for _, capacity := range []int{1, 10, 100, 300, 2*minPerShard - 1} { // one shard
		tab := newTable[int](capacity)
		for i := 0; i < capacity; i++ {
			tab.update(addr(i).Addr(), int64(i), func(p *int) { *p = 1 })
		}
		for i := 0; i < capacity; i++ {
			if !tab.peek(addr(i).Addr(), func(*int) {}) {
				t.Errorf("capacity %d: source %d of %d forgotten", capacity, i, capacity)
				break
			}
		}
	}
}

// TestEvictLeastRecent checks that a full shard forgets the source it saw
// least recently.
func TestEvictLeastRecent(t *testing.T) {
	tab := newTable[int](3 * minPerShard * maxShards)
	for i := range *tab.shards.Load() {
		(*tab.shards.Load())[i].cap = 3 // three sources a shard
	}
	// Four addresses of one shard.
	var same []netip.Addr
	first := tab.shard(addr(0).Addr())
	for i := 0; len(same) < 4; i++ {
		if a := addr(i).Addr(); tab.shard(a) == first {
			same = append(same, a)
		}
	}
	set := func(a netip.Addr, v int) { tab.update(a, int64(v), func(p *int) { *p = v }) }
	has := func(a netip.Addr) bool { return tab.peek(a, func(*int) {}) }
	set(same[0], 1)
	set(same[1], 2)
	set(same[2], 3)
	set(same[0], 4) // seen again: same[1] is now the least recent
	set(same[3], 5)
	if has(same[1]) || !has(same[0]) || !has(same[2]) || !has(same[3]) {
		t.Errorf("after the shard filled: has %v %v %v %v, want true false true true", has(same[0]), has(same[1]), has(same[2]), has(same[3]))
	}
	var v int
	tab.peek(same[3], func(p *int) { v = *p })
	if v != 5 {
		t.Errorf("a reused entry has %d, want 5 (not the evicted one's value)", v)
	}
}

// TestReload checks that bans outlive a reload, that the new settings
// apply, and that a smaller max_sources shrinks the table and keeps the
// newest sources.
func TestReload(t *testing.T) {
	f := newFixture(t, "rate = 1\nmax_sources = 1000")
	for i := 0; i < 999; i++ {
		f.packet(f.Harness, addr(i).String(), 0)
	}
	f.packet(f.Harness, a, time.Second)
	if f.packet(f.Harness, a, time.Second) {
		t.Fatal("not banned")
	}
	// 640 sources, 10 a shard: a and b can not crowd each other out, whatever
	// shards they hash to (the per-process hash seed decides).
	h2 := f.reload(t, "rate = 100\nmax_sources = 640")
	if f.packet(h2, a, 2*time.Second) {
		t.Error("the ban did not outlive the reload")
	}
	if n := f.state.Sources(); n > 640 {
		t.Errorf("%d sources after max_sources became 640", n)
	}
	for i := 0; i < 50; i++ {
		if !f.packet(h2, b, 3*time.Second) {
			t.Fatalf("packet %d of b dropped: the new rate is 100", i)
		}
	}
	if _, err := stagetest.BuildStage(t, "ratelimit", "rate = 0", stagetest.WithServices(f.svc)); err == nil {
		t.Error("rate = 0 built")
	}
	if f.packet(h2, a, 3*time.Second) {
		t.Error("a config that failed to build lifted the ban")
	}
}

func TestAuthFailures(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		keys  string
		fails []time.Duration // when each failure is recorded
		at    time.Duration
		want  bool
	}{
		{name: "off", keys: "", fails: []time.Duration{0, 1, 2, 3, 4, 5}, at: 10 * ms, want: true},
		{name: "under", keys: "auth_failures = 3", fails: []time.Duration{0, 1}, at: 10 * ms, want: true},
		{name: "at", keys: "auth_failures = 3", fails: []time.Duration{0, 1, 2}, at: 10 * ms, want: false},
		{name: "outside the window", keys: "auth_failures = 3", fails: []time.Duration{0, 1, 2}, at: 2 * time.Second, want: true},
		{name: "window", keys: "auth_failures = 3\nwindow = \"1m\"", fails: []time.Duration{0, 10 * time.Second, 50 * time.Second}, at: 55 * time.Second, want: false},
		{name: "spread out", keys: "auth_failures = 3", fails: []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, at: 3*time.Second + 10*ms, want: true},
	}
	for i, tc := range tests {
		f := newFixture(t, tc.keys)
		for _, at := range tc.fails {
			f.failures(t).Fail(netip.MustParseAddrPort(a).Addr(), t0.Add(at))
		}
		if got := f.packet(f.Harness, a, tc.at); got != tc.want {
			t.Errorf("test %d (%s): allowed %v, want %v", i, tc.name, got, tc.want)
		}
		if got := f.packet(f.Harness, b, tc.at); !got {
			t.Errorf("test %d (%s): another source was dropped", i, tc.name)
		}
	}

	// After the ban, the failures that earned it are not counted again.
	f := newFixture(t, "auth_failures = 3\nwindow = \"5m\"\nban = \"1m\"")
	ip := netip.MustParseAddrPort(a).Addr()
	for j := 0; j < 3; j++ {
		f.failures(t).Fail(ip, t0)
	}
	if f.packet(f.Harness, a, time.Second) {
		t.Error("not banned after 3 failures")
	}
	if !f.packet(f.Harness, a, 61*time.Second+1) {
		t.Error("banned again for the failures of before the ban")
	}
	f.failures(t).Fail(ip, t0.Add(62*time.Second))
	f.failures(t).Fail(ip, t0.Add(62*time.Second))
	f.failures(t).Fail(ip, t0.Add(62*time.Second))
	if f.packet(f.Harness, a, 63*time.Second) {
		t.Error("not banned after 3 new failures")
	}
	if got := f.state.Stats.AuthBans.Load(); got != 2 {
		t.Errorf("%d auth bans, want 2", got)
	}
}

func TestFailuresBound(t *testing.T) {
	fl := NewFailures(100)
	for i := 0; i < 1000; i++ {
		fl.Fail(addr(i).Addr(), t0)
	}
	if n := fl.Sources(); n > 100 {
		t.Errorf("%d sources, more than 100", n)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 3*FailuresDepth; i++ {
		fl.Fail(ip, t0.Add(time.Duration(i)*time.Second))
	}
	if n := fl.Count(ip, t0.Add(time.Hour), 2*time.Hour); n != FailuresDepth {
		t.Errorf("count %d, want the %d the record keeps", n, FailuresDepth)
	}
	if n := fl.Count(ip, t0.Add((3*FailuresDepth-1)*time.Second), 10*time.Second); n != 10 {
		t.Errorf("count %d in the last 10s, want 10", n)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		keys string
		err  string // "" for none
	}{
		{keys: ""},
		{keys: "rate = 10\nwindow = \"1s\"\nban = \"5m\"\naction = \"reply\"\nallow = [\"10.0.0.0/8\", \"::1\"]\nmax_sources = 10\nauth_failures = 5"},
		{keys: "rate = 0", err: "rate: 0 is not a positive number"},
		{keys: `window = "0s"`, err: "window: must be longer than 0"},
		{keys: `ban = "500ms"`, err: `ban: "500ms" is shorter than 1s`},
		{keys: `action = "block"`, err: `action: "block" is not "drop" or "reply"`},
		{keys: `allow = ["10.0.0.0/33"]`, err: `allow: "10.0.0.0/33" is not a network`},
		{keys: `allow = ["example.org"]`, err: `allow: "example.org" is not a network`},
		{keys: "max_sources = 0", err: "max_sources: 0 is not a positive number"},
		{keys: "auth_failures = -1", err: "auth_failures: -1 is not between 0 (off) and 32"},
		{keys: "auth_failures = 33", err: "auth_failures: 33 is not between 0 (off) and 32"},
		{keys: `rate = "50"`, err: "rate"},
		{keys: `limit = 5`, err: "limit: unknown key"},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "ratelimit", tc.keys)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), "stage 1 (ratelimit): "+tc.err)):
			t.Errorf("test %d: error %v, want %q", i, err, tc.err)
		}
	}
}

// TestConcurrency runs packets, failures and requests from many goroutines
// at once, for go test -race, over a table smaller than the sources.
func TestConcurrency(t *testing.T) {
	f := newFixture(t, "rate = 5\nmax_sources = 200\nauth_failures = 3\naction = \"reply\"")
	req := stagetest.Request(t, invite)
	fl := f.failures(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				src := addr((g*7919 + i) % 1000)
				f.Pipeline.AllowPacket(src, "UDP")
				if i%10 == 0 {
					fl.Fail(src.Addr(), f.clock.Now())
				}
				if i%50 == 0 {
					f.Request(req, stagetest.From(src.String()))
				}
				if g == 0 && i%500 == 0 {
					f.clock.Set(f.clock.Now().Add(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	if n := f.state.Sources(); n > 200 {
		t.Errorf("%d sources, more than 200", n)
	}
}

// BenchmarkAllowPacket measures a packet's cost: from a few sources (the
// table hits), from many (it evicts), and from a banned one.
func BenchmarkAllowPacket(b *testing.B) {
	for _, bc := range []struct {
		name    string
		keys    string
		sources int
	}{
		{"hits", "rate = 1000000000", 1000},
		{"evicts", "rate = 1000000000\nmax_sources = 1000", 100000},
		{"banned", "rate = 1", 1},
		{"auth_failures", "rate = 1000000000\nauth_failures = 5", 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, bc.keys)
			srcs := make([]netip.AddrPort, bc.sources)
			for i := range srcs {
				srcs[i] = addr(i)
			}
			f.failures(b).Fail(srcs[0].Addr(), t0)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					f.Pipeline.AllowPacket(srcs[i%len(srcs)], "UDP")
					i += 7
				}
			})
		})
	}
}
