package location

import (
	"encoding/binary"
	"strings"
	"time"
)

// Memory keeps an AOR and its bindings as one string of bytes, with no
// pointer in it, in a slot of its shard's slab; its shard's index and due
// index hold slot numbers. The garbage collector marks every object the
// heap holds, and reads every pointer of every object it scans, at each
// cycle, while the proxy serves calls with what CPU is left: a store of a
// few hundred thousand registrations held as Bindings (seven strings, a
// Path slice, two time.Times each) in a map was most of what it read. Held
// this way, a registration is one pointer, in the slab, to one object the
// collector marks without reading it.
//
// A record's string is its AOR, then each binding packed: its size
// (uvarint), then
//
//	expires, updated  int64, Unix nanoseconds (0 for none), little-endian
//	cseq              uint32, little-endian
//	flags             one byte: 1 for NAT
//	nine sizes        uvarint each: Contact, Params, Instance, CallID,
//	                  Received, Transport, Node, Local, UserAgent
//	the nine strings one after the other
//	Path              each as its size (uvarint) then its bytes

// fixedSize is the size of a packed binding's expires, updated, cseq and
// flags.
const fixedSize = 8 + 8 + 4 + 1

// flagNAT is the flags bit of Binding.NAT.
const flagNAT = 1

// memRecord is what Memory keeps of one AOR, in a slot of its shard.
type memRecord struct {
	// data is the AOR, then its bindings packed (lapsed ones until the
	// next Update or Sweep).
	data string
	// aorLen is the size of the AOR at the start of data; -1 marks a free
	// slot.
	aorLen int32
	// next is the slot of the next record whose AOR has the same hash, or
	// -1.
	next int32
	// gone is when the AOR last lost its last binding (Unix nanoseconds),
	// or 0.
	gone int64
	// due is the second (Unix time) under which the record is filed in
	// its shard's due: when its earliest binding expires, or when its
	// tombstone ends.
	due int64
}

// aor returns the record's AOR.
func (r *memRecord) aor() string { return r.data[:r.aorLen] }

// packed returns the record's bindings, packed.
func (r *memRecord) packed() string { return r.data[r.aorLen:] }

// entry is a packed binding read back: its strings are cut from the
// record's packed string, not copied.
type entry struct {
	contact, params, instance, callID, received, transport, node, local, userAgent string
	// paths is the packed Path: each entry's size, then the entry.
	paths            string
	cseq             uint32
	expires, updated int64
	nat              bool
}

// packedSize is the size of b packed, its own size (the prefix) left out.
func packedSize(b *Binding) int {
	n := fixedSize
	for _, s := range strs(b) {
		n += uvarintSize(len(s)) + len(s)
	}
	for _, p := range b.Path {
		n += uvarintSize(len(p)) + len(p)
	}
	return n
}

// strs are the strings of b that are packed, in their order.
func strs(b *Binding) [9]string {
	return [...]string{b.Contact, b.Params, b.Instance, b.CallID, b.Received, b.Transport, b.Node, b.Local, b.UserAgent}
}

// pack returns aor and bindings packed, in one allocation. The bindings'
// AOR is aor, packed once at the start.
func pack(aor string, bindings []Binding) string {
	total := len(aor)
	for i := range bindings {
		n := packedSize(&bindings[i])
		total += uvarintSize(n) + n
	}
	var sb strings.Builder
	sb.Grow(total)
	sb.WriteString(aor)
	var scratch [fixedSize]byte
	for i := range bindings {
		b := &bindings[i]
		writeUvarint(&sb, packedSize(b))
		binary.LittleEndian.PutUint64(scratch[0:], uint64(unixNanos(b.Expires)))
		binary.LittleEndian.PutUint64(scratch[8:], uint64(unixNanos(b.Updated)))
		binary.LittleEndian.PutUint32(scratch[16:], b.CSeq)
		scratch[20] = 0
		if b.NAT {
			scratch[20] = flagNAT
		}
		sb.Write(scratch[:])
		packed := strs(b)
		for _, s := range packed {
			writeUvarint(&sb, len(s))
		}
		for _, s := range packed {
			sb.WriteString(s)
		}
		for _, p := range b.Path {
			writeUvarint(&sb, len(p))
			sb.WriteString(p)
		}
	}
	return sb.String()
}

// next reads the first binding of p and returns it and the rest of p. p
// must be what pack wrote, or a rest that next returned.
func next(p string) (e entry, rest string) {
	body, rest := cutPrefixed(p)
	e.expires = int64(le64(body[0:8]))
	e.updated = int64(le64(body[8:16]))
	e.cseq = uint32(le64(body[16:20]))
	e.nat = body[20]&flagNAT != 0
	body = body[fixedSize:]
	var sizes [9]int
	for i := range sizes {
		sizes[i], body = readUvarint(body)
	}
	fields := [...]*string{&e.contact, &e.params, &e.instance, &e.callID, &e.received, &e.transport, &e.node, &e.local, &e.userAgent}
	for i, s := range fields {
		*s, body = body[:sizes[i]], body[sizes[i]:]
	}
	e.paths = body
	return e, rest
}

// expiresOf returns the expiry of p's first binding and the rest of p,
// reading nothing else.
func expiresOf(p string) (expires int64, rest string) {
	body, rest := cutPrefixed(p)
	return int64(le64(body[0:8])), rest
}

// cutPrefixed splits p after its first size-prefixed part.
func cutPrefixed(p string) (part, rest string) {
	n, p := readUvarint(p)
	return p[:n], p[n:]
}

// binding returns e as a Binding of aor; the caller may keep it (its
// strings are immutable, its Path is its own).
func (e *entry) binding(aor string) Binding {
	b := Binding{
		AOR: aor, Contact: e.contact, Params: e.params, Instance: e.instance, CallID: e.callID, CSeq: e.cseq,
		Expires: fromUnixNanos(e.expires), Received: e.received, Transport: e.transport, NAT: e.nat, Updated: fromUnixNanos(e.updated),
		Node: e.node, Local: e.local, UserAgent: e.userAgent,
	}
	for p := e.paths; p != ""; {
		var hop string
		hop, p = cutPrefixed(p)
		b.Path = append(b.Path, hop)
	}
	return b
}

// le64 reads a little-endian unsigned number of up to 8 bytes.
func le64(s string) uint64 {
	var n uint64
	for i := len(s) - 1; i >= 0; i-- {
		n = n<<8 | uint64(s[i])
	}
	return n
}

// writeUvarint writes n as a uvarint.
func writeUvarint(sb *strings.Builder, n int) {
	var buf [binary.MaxVarintLen64]byte
	sb.Write(binary.AppendUvarint(buf[:0], uint64(n)))
}

// readUvarint reads a uvarint that writeUvarint wrote.
func readUvarint(p string) (int, string) {
	var n uint64
	for shift := 0; ; shift += 7 {
		c := p[0]
		p = p[1:]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int(n), p
		}
	}
}

// uvarintSize is the size of n as a uvarint.
func uvarintSize(n int) int {
	size := 1
	for ; n >= 0x80; n >>= 7 {
		size++
	}
	return size
}

// unixNanos is t in Unix nanoseconds, 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNanos undoes unixNanos.
func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// live returns the bindings of r that are live at now, as Bindings of its
// AOR.
func (r *memRecord) live(now time.Time) []Binding {
	at := now.UnixNano()
	var out []Binding
	for p := r.packed(); p != ""; {
		var e entry
		e, p = next(p)
		if e.expires > at {
			out = append(out, e.binding(r.aor()))
		}
	}
	return out
}

// countLive returns how many bindings of r are live at now.
func (r *memRecord) countLive(now time.Time) int {
	at, n := now.UnixNano(), 0
	for p := r.packed(); p != ""; {
		var expires int64
		expires, p = expiresOf(p)
		if expires > at {
			n++
		}
	}
	return n
}

// view returns r as the record the rules of record.go work on: every
// binding, lapsed ones included.
func (r *memRecord) view() record {
	rec := record{gone: fromUnixNanos(r.gone)}
	for p := r.packed(); p != ""; {
		var e entry
		e, p = next(p)
		rec.bindings = append(rec.bindings, e.binding(r.aor()))
	}
	return rec
}

// set makes r, the record of aor, hold rec.
func (r *memRecord) set(aor string, rec record) {
	r.gone = unixNanos(rec.gone)
	r.data, r.aorLen = pack(aor, rec.bindings), int32(len(aor))
}

// goneAt returns when the AOR lost its last binding: the tombstone's time,
// or, if its bindings all lapsed since the last write, the latest expiry.
func (r *memRecord) goneAt() time.Time {
	gone := r.gone
	for p := r.packed(); p != ""; {
		var expires int64
		expires, p = expiresOf(p)
		gone = max(gone, expires)
	}
	return fromUnixNanos(gone)
}
