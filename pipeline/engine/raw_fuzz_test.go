package engine

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRawDatagram feeds arbitrary bytes to everything that reads a datagram
// before sipgo does, or instead of it: the RFC 2543 marking, the lenient
// reader of unparseable requests and the answer made from it, the reason
// phrase of a 400, and the TCP size check. None may panic; the marking
// must leave a cookie branch whenever it changes the data, and only add.
func FuzzRawDatagram(f *testing.F) {
	files, _ := filepath.Glob("../../../shared/testdata/rfc4475/*.dat")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP host;branch=x\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add([]byte("OPTIONS sip:a SIP/2.0\nv: SIP/2.0/UDP h\n ;branch=\ni: 1\nCSeq: 1 OPTIONS\nl: 5\n\n"))
	from := netip.MustParseAddrPort("192.0.2.10:5060")
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		marked := markRFC2543(data, nil)
		if !bytes.Equal(data, orig) {
			t.Fatalf("markRFC2543 changed its input")
		}
		if !bytes.Equal(marked, data) {
			if len(marked) <= len(data) || !bytes.Contains(marked, []byte(rfc2543Branch)) {
				t.Fatalf("marked %q as %q", data, marked)
			}
		}
		if r, ok := readRawRequest(data); ok {
			_ = rawResponse(r, 400, "Bad Request", from, maphash.MakeSeed()).String()
		}
		if code, reason := badRequest(data, "fuzz"); code != 0 && (code < 400 || code > 499 || reason == "") {
			t.Fatalf("badRequest: %d %q", code, reason)
		}
	})
}
