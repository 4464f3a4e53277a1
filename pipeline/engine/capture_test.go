package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
)

// hepPacket is a HEP v3 packet read back: its chunks by type.
type hepPacket map[uint16][]byte

// readHEP splits a HEP v3 packet into its chunks, independently of the
// encoder.
func readHEP(t *testing.T, b []byte) hepPacket {
	t.Helper()
	if len(b) < 6 || string(b[:4]) != "HEP3" || int(binary.BigEndian.Uint16(b[4:])) != len(b) {
		t.Fatalf("not a HEP3 packet of its length: %q", b)
	}
	out := hepPacket{}
	for rest := b[6:]; len(rest) > 0; {
		n := int(binary.BigEndian.Uint16(rest[4:]))
		out[binary.BigEndian.Uint16(rest[2:])] = rest[6:n]
		rest = rest[n:]
	}
	return out
}

// first line, source and destination of a captured message.
func (h hepPacket) String() string {
	line, _, _ := strings.Cut(string(h[0x0f]), "\r\n")
	addr := func(ip, port uint16) string {
		a, _ := netip.AddrFromSlice(h[ip])
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16(h[port])).String()
	}
	return line + " " + addr(3, 7) + ">" + addr(4, 8)
}

// hepCollector reads HEP packets on 127.0.0.1 until the test ends.
type hepCollector struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []hepPacket
}

func newHEPCollector(t *testing.T) *hepCollector {
	h := &hepCollector{conn: listenUDP(t, "127.0.0.1")}
	serveUDP(t, h.conn, func(b []byte, _ *net.UDPAddr) {
		p := readHEP(t, bytes.Clone(b))
		h.mu.Lock()
		h.got = append(h.got, p)
		h.mu.Unlock()
	})
	return h
}

func (h *hepCollector) packets() []hepPacket {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hepPacket(nil), h.got...)
}

// TestCaptureHEP places a call through the engine with [capture] on: every
// message in and out of the call reaches the collector, with the proxy's
// and the phones' addresses, the capture ID, the key and the Call-ID, and
// the when rule keeps the REGISTER out.
func TestCaptureHEP(t *testing.T) {
	h := newHEPCollector(t)
	c := newCoreOn(t, `[capture]
address = "udp://`+h.conn.LocalAddr().String()+`"
capture_id = 2001
auth_key = "hep-secret"
when = 'cseq.method != "REGISTER"'
`, productChain, Options{})
	callee := newPhone(t, "bob", answering(nil, 180, 200))
	c.register(callee, "bob")
	caller := newPhone(t, "alice", nil)
	c.call(t, caller, callee, "bob", "capture-1")

	proxy, alice, bob := c.addr, caller.addr(), callee.addr()
	want := []string{
		"INVITE sip:bob@example.org SIP/2.0 " + alice + ">" + proxy,
		"SIP/2.0 100 Trying " + proxy + ">" + alice,
		"INVITE " + callee.contact() + " SIP/2.0 " + proxy + ">" + bob,
		"SIP/2.0 180 Status 180 " + bob + ">" + proxy,
		"SIP/2.0 180 Status 180 " + proxy + ">" + alice,
		"SIP/2.0 200 Status 200 " + bob + ">" + proxy,
		"SIP/2.0 200 Status 200 " + proxy + ">" + alice,
		"ACK " + callee.contact() + " SIP/2.0 " + alice + ">" + proxy,
		"ACK " + callee.contact() + " SIP/2.0 " + proxy + ">" + bob,
	}
	var seen map[string]hepPacket
	poll(t, "every message of the call at the collector", func() bool {
		seen = map[string]hepPacket{}
		for _, p := range h.packets() {
			seen[p.String()] = p
		}
		for _, w := range want {
			if seen[w] == nil {
				return false
			}
		}
		return true
	})
	for s, p := range seen {
		if strings.HasPrefix(s, "REGISTER") || strings.Contains(s, "reg-bob") {
			t.Errorf("the when rule let through %s", s)
		}
		if string(p[0x11]) != "capture-1" && !strings.Contains(string(p[0x0f]), "reg-bob") {
			t.Errorf("%s: correlation %q, want the Call-ID", s, p[0x11])
		}
		if binary.BigEndian.Uint32(p[0x0c]) != 2001 || string(p[0x0e]) != "hep-secret" || p[0x02][0] != 17 {
			t.Errorf("%s: capture ID %x, key %q, protocol %d", s, p[0x0c], p[0x0e], p[0x02])
		}
	}
	// The count of a packet goes up once it is sent, after the collector
	// may have read it.
	poll(t, "every message counted as sent", func() bool { return c.e.CaptureCounts().Sent >= uint64(len(want)) })
	if n := c.e.CaptureCounts(); n.Dropped["queue"] != 0 {
		t.Errorf("counts %+v", n)
	}
}

// TestCaptureReload moves the capture to another collector with a new
// capture ID by swapping in a pipeline built from a new config, as a
// reload does, and then turns it off. A request sent over TCP in two
// writes reaches the collector as one message.
func TestCaptureReload(t *testing.T) {
	first, second := newHEPCollector(t), newHEPCollector(t)
	section := func(h *hepCollector, id int) string {
		return fmt.Sprintf("[capture]\naddress = \"udp://%s\"\ncapture_id = %d\n", h.conn.LocalAddr(), id)
	}
	c := newCoreOn(t, section(first, 1), productChain, Options{}, "tcp://127.0.0.1:0")
	reload := func(sections string) {
		cfg, err := config.Parse("core.toml", []byte("[server]\ndomains = [\"example.org\"]\n"+sections+productChain))
		if err != nil {
			t.Fatal(err)
		}
		p, err := pipeline.Build(cfg, c.e.svc)
		if err != nil {
			t.Fatal(err)
		}
		c.e.Use(p)
	}
	conn, err := net.Dial("tcp", c.e.testAddr("TCP"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	options := func(id string) {
		msg := "OPTIONS sip:" + c.e.testAddr("TCP") + " SIP/2.0\r\nVia: SIP/2.0/TCP " + conn.LocalAddr().String() + ";branch=" + sip.GenerateBranch() +
			"\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:" + c.e.testAddr("TCP") + ">\r\nCall-ID: " + id +
			"\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		for _, part := range []string{msg[:20], msg[20:]} {
			if _, err := conn.Write([]byte(part)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // most often two reads; capture/frame_test.go checks every split
		}
	}
	// has reports whether h got the OPTIONS of id, in and its 200 out,
	// whole, with capture ID cid.
	has := func(h *hepCollector, id string, cid uint32) bool {
		in, out := false, false
		for _, p := range h.packets() {
			if string(p[0x11]) != id || binary.BigEndian.Uint32(p[0x0c]) != cid || p[0x02][0] != 6 {
				continue
			}
			in = in || strings.HasPrefix(string(p[0x0f]), "OPTIONS ") && strings.HasSuffix(string(p[0x0f]), "Content-Length: 0\r\n\r\n")
			out = out || strings.HasPrefix(string(p[0x0f]), "SIP/2.0 200 ")
		}
		return in && out
	}
	options("before")
	poll(t, "the OPTIONS at the first collector", func() bool { return has(first, "before", 1) })

	reload(section(second, 2))
	options("after")
	poll(t, "the OPTIONS at the second collector", func() bool { return has(second, "after", 2) })

	reload("")
	options("off")
	c.idle(t)
	sent := c.e.CaptureCounts().Sent
	options("off-2")
	c.idle(t)
	if has(first, "after", 1) || has(second, "before", 2) || c.e.CaptureCounts().Sent != sent {
		t.Errorf("capture went where the config did not say: sent %d then %d", sent, c.e.CaptureCounts().Sent)
	}
}
