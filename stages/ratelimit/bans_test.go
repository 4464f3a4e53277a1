package ratelimit

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// neighbour returns the i-th address of the network of base: base with i
// added to its last bits.
func neighbour(base netip.Addr, i int) netip.Addr {
	b := base.As16()
	n := binary.BigEndian.Uint32(b[12:]) + uint32(i)
	binary.BigEndian.PutUint32(b[12:], n)
	if base.Is4() {
		return netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrFrom16(b)
}

// TestBanEviction is the attack that flushed a ban: once a source is
// banned, max_sources other sources of its network send a packet each.
// They must not lift the ban. The table used to put a whole IPv4 /8 in
// one shard, which forgot its least recently seen source, ban or not.
func TestBanEviction(t *testing.T) {
	const maxSources = minPerShard * maxShards // 64 shards of 256
	tests := []struct {
		name   string
		banned string
	}{
		{"IPv4, its /8", "10.0.0.1"},
		{"IPv4, its /24", "192.0.2.1"},
		{"IPv6, its /64", "2001:db8::1"},
	}
	for i, tc := range tests {
		f := newFixture(t, "rate = 1\nban = \"1h\"\nmax_sources = "+strconv.Itoa(maxSources))
		banned := netip.MustParseAddr(tc.banned)
		src := netip.AddrPortFrom(banned, 5060)
		f.packet(f.Harness, src.String(), 0)
		if f.packet(f.Harness, src.String(), 0) {
			t.Fatalf("test %d (%s): not banned", i, tc.name)
		}
		for j := 1; j <= maxSources; j++ {
			other := netip.AddrPortFrom(neighbour(banned, j), 5060)
			if !f.packet(f.Harness, other.String(), time.Duration(j)*time.Microsecond) {
				t.Fatalf("test %d (%s): %s dropped at its first packet", i, tc.name, other)
			}
		}
		if f.packet(f.Harness, src.String(), time.Second) {
			t.Errorf("test %d (%s): the ban was lifted by %d other sources (%d evicted)", i, tc.name, maxSources, f.state.Evicted())
		}
		if n := f.state.Stats.Bans.Load(); n != 1 {
			t.Errorf("test %d (%s): %d bans, want 1", i, tc.name, n)
		}
	}
}

// TestShardsEven checks that sources spread evenly over the shards, however
// close their addresses: a network must not fill one shard.
func TestShardsEven(t *testing.T) {
	const perShard = 1000
	tests := []struct {
		name string
		addr func(i int) netip.Addr
	}{
		{"IPv4, one /8", func(i int) netip.Addr { return neighbour(netip.MustParseAddr("10.0.0.0"), i) }},
		{"IPv4, one /16, a stride of 4", func(i int) netip.Addr { return neighbour(netip.MustParseAddr("172.16.0.0"), 4*i) }},
		{"IPv6, one /64", func(i int) netip.Addr { return neighbour(netip.MustParseAddr("2001:db8::"), i) }},
		{"IPv6, one /48, its /64s", func(i int) netip.Addr {
			b := netip.MustParseAddr("2001:db8:1::1").As16()
			binary.BigEndian.PutUint16(b[6:], uint16(i))
			return netip.AddrFrom16(b)
		}},
		{"IPv6, ::1 of many /32s", func(i int) netip.Addr {
			b := netip.MustParseAddr("2001::1").As16()
			binary.BigEndian.PutUint16(b[2:], uint16(i))
			return netip.AddrFrom16(b)
		}},
	}
	for i, tc := range tests {
		tab := newTable[int](minPerShard * maxShards)
		shards := *tab.shards.Load()
		count := make(map[*shard[int]]int)
		for j := 0; j < perShard*len(shards); j++ {
			count[tab.shard(tc.addr(j))]++
		}
		// The counts are binomial, with a standard deviation of about 31:
		// a quarter off is eight of them.
		least, most := perShard*len(shards), 0
		for k := range shards {
			least, most = min(least, count[&shards[k]]), max(most, count[&shards[k]])
		}
		if least < perShard*3/4 || most > perShard*5/4 {
			t.Errorf("test %d (%s): shards hold %d to %d sources, want about %d each", i, tc.name, least, most, perShard)
		}
	}
}

// TestBansFull checks what a full ban table does: sources that are not
// banned never take a ban's place, a newer ban takes the oldest one's,
// and a ban that ended gives way first.
func TestBansFull(t *testing.T) {
	const maxSources = 300 // one shard
	f := newFixture(t, "rate = 1\nban = \"1h\"\nmax_sources = "+strconv.Itoa(maxSources))
	src := func(i int) string { return addr(i).String() }
	banned := func(i int, at time.Duration) bool {
		return !f.packet(f.Harness, src(i), at)
	}
	at := time.Duration(0)
	for i := 0; i < maxSources; i++ {
		at += time.Millisecond
		f.packet(f.Harness, src(i), at)
		if !banned(i, at) {
			t.Fatalf("source %d not banned", i)
		}
	}
	for i := maxSources; i < 11*maxSources; i++ {
		at += time.Millisecond
		if banned(i, at) {
			t.Fatalf("source %d dropped at its first packet", i)
		}
	}
	for i := 0; i < maxSources; i++ {
		if !banned(i, at) {
			t.Fatalf("the ban of source %d was lifted by sources that are not banned", i)
		}
	}
	if n := f.state.Stats.Lifted.Load(); n != 0 {
		t.Errorf("%d bans lifted, want 0", n)
	}

	// A newer ban takes the place of the oldest one.
	newer := 11 * maxSources
	f.packet(f.Harness, src(newer), at)
	if !banned(newer, at) {
		t.Fatal("the newer source is not banned")
	}
	if banned(0, at) {
		t.Error("the oldest ban holds in a full table")
	}
	for i := 1; i < maxSources; i++ {
		if !banned(i, at) {
			t.Errorf("the ban of source %d was lifted, not the oldest", i)
		}
	}
	if n := f.state.Stats.Lifted.Load(); n != 1 {
		t.Errorf("%d bans lifted, want 1", n)
	}

	// Once they ended, bans give way without being lifted early.
	at += time.Hour
	f.packet(f.Harness, src(newer+1), at)
	if !banned(newer+1, at) {
		t.Fatal("a source is not banned after the others' bans ended")
	}
	if n := f.state.Stats.Lifted.Load(); n != 1 {
		t.Errorf("%d bans lifted, want still 1", n)
	}
}
