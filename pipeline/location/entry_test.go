package location

import (
	"strings"
	"testing"
	"time"
)

// TestPack checks that packed bindings read back as they were, whatever
// their strings' sizes (one-byte and longer size prefixes), with and
// without Path, zero times, and several bindings to a record.
func TestPack(t *testing.T) {
	long := strings.Repeat("x", 300) // a two-byte size prefix
	full := Binding{
		AOR: "alice", Contact: "sip:alice@192.0.2.1:5060;transport=udp", Params: "+sip.instance=\"<urn:uuid:1>\";reg-id=1",
		Instance: "<urn:uuid:1>", CallID: "a84b4c76e66710@192.0.2.1", CSeq: 4294967295,
		Expires: t0.Add(time.Hour), Received: "192.0.2.1:5060", Transport: "UDP", NAT: true,
		Node: "3f2a9c1e5b7d4a60", Local: "[2001:db8::1]:5060", UserAgent: "Zoiper rv2.10.20.6", Path: []string{"<sip:edge1.example.com;lr>", "<sip:" + long + ";lr>"}, Updated: t0,
	}
	tests := []struct {
		name     string
		bindings []Binding
	}{
		{"none", nil},
		{"one, every field", []Binding{full}},
		{"empty strings, zero times", []Binding{{AOR: "alice", Contact: "sip:a@1"}}},
		{"long strings", []Binding{{AOR: "alice", Contact: "sip:" + long, CallID: long, Params: long, Expires: t0.Add(time.Second)}}},
		{"several", []Binding{full, {AOR: "alice", Contact: "sip:b@2", Expires: t0.Add(-time.Hour), CSeq: 7}, full}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r memRecord
			r.set("alice", record{bindings: tc.bindings, gone: t0})
			if r.aor() != "alice" {
				t.Errorf("AOR read back as %q", r.aor())
			}
			if tc.bindings == nil && r.packed() != "" {
				t.Fatalf("no bindings packed as %q", r.packed())
			}
			got := r.view()
			if !got.gone.Equal(t0) {
				t.Errorf("gone %v, want %v", got.gone, t0)
			}
			if len(got.bindings) != len(tc.bindings) || packedCount(&r) != len(tc.bindings) {
				t.Fatalf("%d bindings read back (size %d), want %d", len(got.bindings), packedCount(&r), len(tc.bindings))
			}
			for i, want := range tc.bindings {
				if b := got.bindings[i]; !sameBinding(b, want) {
					t.Errorf("binding %d read back as\n%+v\nwant\n%+v", i, b, want)
				}
			}
		})
	}
}

// TestPackedTimes checks what Memory reads of the times alone: the live
// count, when the AOR was gone, and the second it is next due.
func TestPackedTimes(t *testing.T) {
	tests := []struct {
		name      string
		expires   []time.Duration // after t0
		gone      time.Time
		wantLive  int // at t0
		wantGone  time.Time
		wantDueAt time.Time
	}{
		{"none, no tombstone", nil, time.Time{}, 0, time.Time{}, time.Unix(0, 0)},
		{"none, a tombstone", nil, t0, 0, t0, t0.Add(TombstoneTTL)},
		{"one live", []time.Duration{time.Hour}, time.Time{}, 1, t0.Add(time.Hour), t0.Add(time.Hour)},
		{"earliest first or last", []time.Duration{time.Hour, 90 * time.Second, 2 * time.Hour}, time.Time{}, 3, t0.Add(2 * time.Hour), t0.Add(90 * time.Second)},
		{"a lapsed one", []time.Duration{-time.Minute, time.Minute}, time.Time{}, 1, t0.Add(time.Minute), t0.Add(-time.Minute)},
		{"a part second rounds up", []time.Duration{1500 * time.Millisecond}, time.Time{}, 1, t0.Add(1500 * time.Millisecond), t0.Add(2 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec record
			for i, d := range tc.expires {
				rec.bindings = append(rec.bindings, Binding{Contact: "sip:u@" + string(rune('a'+i)), Expires: t0.Add(d)})
			}
			rec.gone = tc.gone
			var r memRecord
			r.set("u", rec)
			if got := r.countLive(t0); got != tc.wantLive {
				t.Errorf("countLive = %d, want %d", got, tc.wantLive)
			}
			if got := len(r.live(t0)); got != tc.wantLive {
				t.Errorf("live returned %d bindings, want %d", got, tc.wantLive)
			}
			if got := r.goneAt(); !got.Equal(tc.wantGone) {
				t.Errorf("goneAt = %v, want %v", got, tc.wantGone)
			}
			want := tc.wantDueAt.Unix()
			if tc.wantDueAt.Equal(time.Unix(0, 0)) {
				want = 0
			}
			if rec := r.view(); rec.due() != want {
				t.Errorf("due of the record read back = %d, want %d", rec.due(), want)
			}
		})
	}
}

// packedCount returns the number of bindings packed in r, counted by their
// size prefixes alone.
func packedCount(r *memRecord) int {
	n := 0
	for p := r.packed(); p != ""; n++ {
		_, p = cutPrefixed(p)
	}
	return n
}
