package dialog

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"
)

// A Memory keeps each dialog as one string, its record: the ID's key,
// then the dialog, each string length-prefixed (a uvarint) and the
// expiry at a fixed place. A busy proxy keeps tens of thousands of
// dialogs (those in progress, and the ended ones for 64*T1), and as
// structs each held some ten strings of its own: pointers the garbage
// collector followed on every cycle (docs/benchmarks.md). A record is one
// object with no pointer in it, and a map entry of two strings that point
// into it. Reading one back copies nothing: its strings are slices of the
// record. The expiry is kept on the wall clock, as the snapshot file and
// Redis keep it.

// recordBuffers are where records are written before they are copied
// into a string of their exact size.
var recordBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// appendKey appends the key of id, the first part of its record: the
// Call-ID and the two tags, each length-prefixed, so that no two IDs have
// one key whatever bytes they hold.
func appendKey(b []byte, id ID) []byte {
	b = appendString(b, id.CallID)
	b = appendString(b, id.Tags[0])
	return appendString(b, id.Tags[1])
}

// makeRecord returns the record of dialog d under id, and the length of
// its key.
func makeRecord(id ID, d *Dialog) (string, int) {
	p := recordBuffers.Get().(*[]byte)
	b := appendKey((*p)[:0], id)
	n := len(b)
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(d.Expires)))
	var flags byte
	if d.Confirmed {
		flags |= 1
	}
	if d.Ended {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(d.CallerCSeqShift))
	b = appendString(b, d.CallerTag)
	b = appendEnd(b, &d.Caller)
	b = appendEnd(b, &d.Callee)
	r := string(b)
	*p = b
	recordBuffers.Put(p)
	return r, n
}

// appendEnd appends the fields of e.
func appendEnd(b []byte, e *End) []byte {
	b = appendString(b, e.Target)
	b = appendString(b, e.Previous)
	b = appendString(b, e.Next)
	b = appendString(b, e.Transport)
	// The address's length first: one byte, unless a long IPv6 zone
	// makes it more.
	at := len(b)
	b = append(b, 0)
	b, _ = e.Addr.AppendBinary(b) // it never fails
	if n := len(b) - at - 1; n < 0x80 {
		b[at] = byte(n)
	} else {
		addr := append([]byte(nil), b[at+1:]...)
		b = append(binary.AppendUvarint(b[:at], uint64(n)), addr...)
	}
	return b
}

// appendString appends s, length-prefixed.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errRecord is a record that does not read back: a bug, never input.
var errRecord = errors.New("dialog: damaged record")

// recordExpires returns the expiry of the record r whose key is n bytes.
func recordExpires(r string, n int) time.Time {
	return fromUnixNano(int64(uint64At(r[n:])))
}

// unixNano is t in Unix nanoseconds: 0 for the zero time, and the
// latest there is for a time past 2262 (a dialog_timeout of centuries),
// whose own are out of range.
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(latest):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// latest is the latest time in Unix nanoseconds.
var latest = time.Unix(0, math.MaxInt64)

// fromUnixNano is the time unixNano returned ns for.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// uint64At reads a little-endian uint64 at the start of s.
func uint64At(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// readRecord returns the ID and the dialog of the record r.
func readRecord(r string) (ID, Dialog, error) {
	rd := recordReader{s: r}
	var id ID
	id.CallID = rd.string()
	id.Tags[0] = rd.string()
	id.Tags[1] = rd.string()
	var d Dialog
	if rd.err == nil && len(rd.s)-rd.i >= 9 {
		d.Expires = fromUnixNano(int64(uint64At(rd.s[rd.i:])))
		flags := rd.s[rd.i+8]
		d.Confirmed, d.Ended = flags&1 != 0, flags&2 != 0
		rd.i += 9
	} else {
		rd.err = errRecord
	}
	d.CallerCSeqShift = uint32(rd.uvarint())
	d.CallerTag = rd.string()
	rd.end(&d.Caller)
	rd.end(&d.Callee)
	if rd.err == nil && rd.i != len(rd.s) {
		rd.err = errRecord
	}
	return id, d, rd.err
}

// recordReader reads a record's fields in order; the first error sticks.
type recordReader struct {
	s   string
	i   int
	err error
}

// uvarint reads a uvarint.
func (rd *recordReader) uvarint() uint64 {
	if rd.err != nil {
		return 0
	}
	var v uint64
	for shift := 0; rd.i < len(rd.s) && shift < 64; shift += 7 {
		c := rd.s[rd.i]
		rd.i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	rd.err = errRecord
	return 0
}

// string reads a length-prefixed string, a slice of the record.
func (rd *recordReader) string() string {
	n := rd.uvarint()
	if rd.err != nil || n > uint64(len(rd.s)-rd.i) {
		rd.err = errRecord
		return ""
	}
	s := rd.s[rd.i : rd.i+int(n)]
	rd.i += int(n)
	return s
}

// end reads what appendEnd wrote into e.
func (rd *recordReader) end(e *End) {
	e.Target = rd.string()
	e.Previous = rd.string()
	e.Next = rd.string()
	e.Transport = rd.string()
	addr := rd.string()
	if rd.err != nil {
		return
	}
	var buf [64]byte
	b := buf[:0]
	if len(addr) > len(buf) {
		b = nil // a long IPv6 zone
	}
	if err := e.Addr.UnmarshalBinary(append(b, addr...)); err != nil {
		rd.err = errRecord
	}
}
