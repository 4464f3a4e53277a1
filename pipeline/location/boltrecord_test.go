package location

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestRecordEncoding(t *testing.T) {
	at := time.Unix(1_700_000_000, 123456789)
	full := Binding{AOR: "alice", Contact: "sip:alice@192.0.2.1:5060", Params: "+sip.instance=\"<urn:uuid:1>\";reg-id=1",
		Instance: "<urn:uuid:1>", CallID: "c1@phone", CSeq: 7, Expires: at.Add(time.Hour), Received: "198.51.100.1:40000",
		Transport: "UDP", NAT: true, Node: "n1", Local: "192.0.2.10:5060", UserAgent: "Phone/1.0",
		Path: []string{"<sip:edge1;lr>", "<sip:edge2;lr>"}, Updated: at}
	tests := []record{
		{},
		{gone: at},
		{bindings: []Binding{full}},
		{bindings: []Binding{{AOR: "alice", Contact: "sip:alice@192.0.2.2", Expires: at}, full}, gone: at.Add(-time.Minute)},
	}
	for i, tc := range tests {
		got, err := decodeRecord("alice", encodeRecord(&tc))
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if !sameRecord(*got, tc) {
			t.Errorf("test %d: decoded %+v, want %+v", i, *got, tc)
		}
		// A file written before packed records holds JSON.
		js, err := json.Marshal(boltRecord{Bindings: tc.bindings, Gone: tc.gone})
		if err != nil {
			t.Fatal(err)
		}
		if got, err = decodeRecord("alice", js); err != nil || !sameRecord(*got, tc) {
			t.Errorf("test %d: JSON decoded %+v (%v), want %+v", i, got, err, tc)
		}
	}
}

// TestRecordOldJSON checks that a record as the JSON store wrote it,
// fixed here rather than made by today's types, still reads.
func TestRecordOldJSON(t *testing.T) {
	const old = `{"bindings":[{"AOR":"alice","Contact":"sip:alice@192.0.2.1:5060",` +
		`"Params":"+sip.instance=\"\u003curn:uuid:1\u003e\";reg-id=1","Instance":"\u003curn:uuid:1\u003e",` +
		`"CallID":"c1@phone","CSeq":7,"Expires":"2023-11-14T23:13:20.123456789Z","Received":"198.51.100.1:40000",` +
		`"Transport":"UDP","NAT":true,"Node":"n1","Local":"192.0.2.10:5060","UserAgent":"Phone/1.0",` +
		`"Path":["\u003csip:edge1;lr\u003e","\u003csip:edge2;lr\u003e"],"Updated":"2023-11-14T22:13:20.123456789Z"}],` +
		`"gone":"2023-11-14T22:12:20.123456789Z"}`
	at := time.Unix(1_700_000_000, 123456789)
	want := record{gone: at.Add(-time.Minute), bindings: []Binding{{AOR: "alice", Contact: "sip:alice@192.0.2.1:5060",
		Params: "+sip.instance=\"<urn:uuid:1>\";reg-id=1", Instance: "<urn:uuid:1>", CallID: "c1@phone", CSeq: 7,
		Expires: at.Add(time.Hour), Received: "198.51.100.1:40000", Transport: "UDP", NAT: true, Node: "n1",
		Local: "192.0.2.10:5060", UserAgent: "Phone/1.0", Path: []string{"<sip:edge1;lr>", "<sip:edge2;lr>"}, Updated: at}}}
	got, err := decodeRecord("alice", []byte(old))
	if err != nil || !sameRecord(*got, want) {
		t.Errorf("old JSON decoded %+v (%v), want %+v", got, err, want)
	}
}

// sameRecord compares records by what they mean: times by instant.
func sameRecord(a, b record) bool {
	if !a.gone.Equal(b.gone) || len(a.bindings) != len(b.bindings) {
		return false
	}
	for i := range a.bindings {
		x, y := a.bindings[i], b.bindings[i]
		if !x.Expires.Equal(y.Expires) || !x.Updated.Equal(y.Updated) {
			return false
		}
		x.Expires, x.Updated, y.Expires, y.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// TestRecordDamaged cuts a packed record at every length, and flips each
// of its bytes: none panics, and a cut decodes only where a binding ends.
func TestRecordDamaged(t *testing.T) {
	r := record{bindings: []Binding{
		{AOR: "bob", Contact: "sip:bob@192.0.2.3", CallID: "x", Expires: time.Now(), Path: []string{"<sip:p;lr>"}},
		{AOR: "bob", Contact: "sip:bob@192.0.2.4", Expires: time.Now()},
	}}
	v := encodeRecord(&r)
	ends := map[int]bool{9: true, len(encodeRecord(&record{bindings: r.bindings[:1]})): true}
	for n := range len(v) {
		if _, err := decodeRecord("bob", v[:n]); (err == nil) != ends[n] {
			t.Errorf("cut at %d of %d: error %v", n, len(v), err)
		}
	}
	for i := range v {
		for _, b := range []byte{0, 0x7f, 0x80, 0xff} {
			w := append([]byte(nil), v...)
			w[i] = b
			decodeRecord("bob", w) // must not panic
		}
	}
}

// TestBoltReadsJSON opens a file whose records are JSON, as Bolt wrote
// them before packed records: they are read, and an Update writes the
// record packed.
func TestBoltReadsJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	now := time.Now()
	old := Binding{AOR: "carol", Contact: "sip:carol@192.0.2.5", CallID: "c", CSeq: 1, Expires: now.Add(time.Hour), Updated: now}
	js, err := json.Marshal(boltRecord{Bindings: []Binding{old}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	putRaw(t, path, bucketAORs, "carol", string(js))
	if s, err = NewBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if aors, bindings := s.Held(); aors != 1 || bindings != 1 {
		t.Errorf("held %d AORs and %d bindings, want 1 and 1", aors, bindings)
	}
	bs, known, err := s.Lookup("carol", now)
	if err != nil || !known || len(bs) != 1 || bs[0].Contact != old.Contact {
		t.Fatalf("lookup: %+v, %v, %v", bs, known, err)
	}
	if _, err := s.Update("carol", now, func(cur []Binding) ([]Binding, error) {
		cur[0].CSeq = 2
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketAORs).Get([]byte("carol")); len(v) == 0 || v[0] != packedRecord {
			t.Errorf("after an Update the record is %q, want it packed", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
