package dialog

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestRecord: a dialog and its ID read back from their record as they
// were written, whatever their strings and address; a record cut short or
// with bytes to spare is an error, never a dialog.
func TestRecord(t *testing.T) {
	expires := time.Unix(1765000000, 123456789)
	long := strings.Repeat("x", 300)
	tests := []struct {
		id ID
		d  Dialog
	}{
		{ID{}, Dialog{}},
		{NewID("c1@test", "b", "a"), Dialog{
			CallerTag: "b",
			Caller:    End{Target: "sip:caller@192.0.2.1:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.1:5060"), Transport: "UDP"},
			Callee:    End{Target: "sip:alice@192.0.2.3:5060;transport=udp", Previous: "sip:alice@192.0.2.2:5060;transport=udp", Next: "sip:192.0.2.9:5060;transport=udp", Addr: netip.MustParseAddrPort("[2001:db8::9]:5070"), Transport: "TCP"},
			Confirmed: true,
			Expires:   expires,
		}},
		{NewID(long, long+"a", ""), Dialog{
			CallerTag:       long,
			Caller:          End{Target: long, Addr: netip.MustParseAddrPort("[fe80::1%" + strings.Repeat("z", 200) + "]:5060"), Transport: "WSS"},
			Callee:          End{Addr: netip.MustParseAddrPort("[fe80::1%eth0]:5062")},
			Ended:           true,
			Expires:         expires,
			CallerCSeqShift: 1 << 20,
		}},
	}
	for i, tc := range tests {
		r, n := makeRecord(tc.id, &tc.d)
		if key := string(appendKey(nil, tc.id)); r[:n] != key {
			t.Errorf("test %d: the record starts with %q, want its key %q", i, r[:n], key)
		}
		if got := recordExpires(r, n); !got.Equal(tc.d.Expires) {
			t.Errorf("test %d: expires %v, want %v", i, got, tc.d.Expires)
		}
		id, d, err := readRecord(r)
		if err != nil || id != tc.id || d.CallerTag != tc.d.CallerTag || d.Caller != tc.d.Caller || d.Callee != tc.d.Callee ||
			d.Confirmed != tc.d.Confirmed || d.Ended != tc.d.Ended || !d.Expires.Equal(tc.d.Expires) || d.CallerCSeqShift != tc.d.CallerCSeqShift {
			t.Errorf("test %d: read back %+v %+v %v\nwant %+v %+v", i, id, d, err, tc.id, tc.d)
		}
		for cut := range len(r) {
			if _, _, err := readRecord(r[:cut]); err == nil {
				t.Errorf("test %d: a record cut to %d of %d bytes read back", i, cut, len(r))
			}
		}
		if _, _, err := readRecord(r + "x"); err == nil {
			t.Errorf("test %d: a record with a byte to spare read back", i)
		}
	}
	// A time past what Unix nanoseconds hold reads back as the latest.
	r, n := makeRecord(ID{}, &Dialog{Expires: time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)})
	if got := recordExpires(r, n); !got.Equal(latest) {
		t.Errorf("an expiry in 2500 read back as %v, want %v", got, latest)
	}
	// Two IDs whose strings joined are the same have keys of their own.
	if a, b := string(appendKey(nil, ID{CallID: "ab", Tags: [2]string{"c", ""}})), string(appendKey(nil, ID{CallID: "a", Tags: [2]string{"bc", ""}})); a == b {
		t.Errorf("two IDs share the key %q", a)
	}
}

// BenchmarkMemory is the dialog store's work for one call: the dialog
// recorded on the 180 and on the 200, looked up for the ACK and the BYE,
// ended by the BYE's 200.
func BenchmarkMemory(b *testing.B) {
	m := NewMemory()
	now := time.Now()
	caller := End{Target: "sip:alice@192.0.2.1:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.1:5060"), Transport: "UDP"}
	callee := End{Target: "sip:bob@192.0.2.2:5060;transport=udp", Addr: netip.MustParseAddrPort("192.0.2.2:5060"), Transport: "UDP"}
	ids := make([]ID, 1024)
	for i := range ids {
		ids[i] = NewID("call-"+strings.Repeat("7", 20)+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), "caller-tag-123456", "callee-tag-654321")
	}
	b.ReportAllocs()
	for i := range b.N {
		id := ids[i%len(ids)]
		for _, confirmed := range []bool{false, true} {
			_ = m.Update(id, now, func(d *Dialog, found bool) bool {
				if found && d.Confirmed {
					return false
				}
				if !found {
					d.CallerTag, d.Caller = id.Tags[0], caller
				}
				d.Callee, d.Confirmed, d.Expires = callee, confirmed, now.Add(time.Hour)
				return true
			})
		}
		_, _, _ = m.Get(id, now)
		_, _, _ = m.Get(id, now)
		_ = m.Update(id, now, func(d *Dialog, found bool) bool {
			d.Ended, d.Expires = true, now.Add(32*time.Second)
			return found
		})
	}
}
