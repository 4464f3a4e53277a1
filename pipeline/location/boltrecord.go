package location

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// packedRecord is the first byte of a record that Bolt stores packed:
// then its tombstone time (int64, Unix nanoseconds, 0 for none,
// little-endian) and its bindings packed as Memory packs them (see
// entry.go), without the AOR, which is the record's key. A file written
// before holds JSON boltRecords, which start with '{': Bolt reads both and
// writes packed records, so that a record turns packed when it changes.
const packedRecord = 0x01

// errBadRecord is the error of a packed record that does not decode.
var errBadRecord = errors.New("packed record is damaged")

// boltRecord is a record as JSON, as Bolt stored it before packedRecord.
type boltRecord struct {
	Bindings []Binding `json:"bindings,omitempty"`
	Gone     time.Time `json:"gone,omitzero"`
}

// encodeRecord returns r as Bolt stores it: packed.
func encodeRecord(r *record) []byte {
	packed := pack("", r.bindings)
	v := make([]byte, 9, 9+len(packed))
	v[0] = packedRecord
	binary.LittleEndian.PutUint64(v[1:], uint64(unixNanos(r.gone)))
	return append(v, packed...)
}

// decodeRecord reads the record of aor that encodeRecord wrote, or its
// JSON boltRecord. v may be bbolt's memory: nothing returned points into
// it.
func decodeRecord(aor string, v []byte) (*record, error) {
	if len(v) == 0 || v[0] != packedRecord {
		var br boltRecord
		if err := json.Unmarshal(v, &br); err != nil {
			return nil, err
		}
		return &record{bindings: br.Bindings, gone: br.Gone}, nil
	}
	if len(v) < 9 {
		return nil, errBadRecord
	}
	p := string(v[9:])
	if !wellPacked(p) {
		return nil, errBadRecord
	}
	r := &record{gone: fromUnixNanos(int64(binary.LittleEndian.Uint64(v[1:9])))}
	for p != "" {
		var e entry
		e, p = next(p)
		r.bindings = append(r.bindings, e.binding(aor))
	}
	return r, nil
}

// wellPacked reports whether p is bindings as pack writes them, so that
// next, which trusts what it reads, can read them: a file can be damaged.
func wellPacked(p string) bool {
	for p != "" {
		n, rest, ok := checkedUvarint(p)
		if !ok || n < fixedSize || n > len(rest) {
			return false
		}
		body, total := rest[fixedSize:n], 0
		for range 9 {
			var size int
			if size, body, ok = checkedUvarint(body); !ok {
				return false
			}
			total += size
		}
		if total > len(body) {
			return false
		}
		for paths := body[total:]; paths != ""; {
			var size int
			if size, paths, ok = checkedUvarint(paths); !ok || size > len(paths) {
				return false
			}
			paths = paths[size:]
		}
		p = rest[n:]
	}
	return true
}

// checkedUvarint reads a uvarint as readUvarint does, and reports whether
// there was one, no larger than p.
func checkedUvarint(p string) (int, string, bool) {
	var n uint64
	for shift := 0; shift < 63 && p != ""; shift += 7 {
		c := p[0]
		p = p[1:]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int(n), p, n <= uint64(len(p))
		}
	}
	return 0, p, false
}
