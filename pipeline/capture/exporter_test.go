package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// message is a SIP request of a call, as a phone sends it.
func message(method, callID string) []byte {
	return []byte(method + " sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 " + method + "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
}

func collector(t *testing.T) (*net.UDPConn, string) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, "udp://" + c.LocalAddr().String()
}

func TestExporterSendsHEP(t *testing.T) {
	c, addr := collector(t)
	x := NewExporter(nil, nil)
	defer x.Close()
	route := &Route{Address: addr, HEP: HEP{CaptureID: 7, AuthKey: "secret"},
		Select: func(msg []byte) (bool, bool, bool) { return !bytes.HasPrefix(msg, []byte("OPTIONS")), false, false }}
	src, dst := netip.MustParseAddrPort("127.0.0.1:5062"), netip.MustParseAddrPort("127.0.0.1:5060")
	x.Offer(Item{Packet: Packet{Time: time.Unix(1700000000, 0), Transport: "UDP", Src: src, Dst: dst, Payload: message("OPTIONS", "skip")}, Route: route})
	invite := message("INVITE", "call-1")
	// The INVITE comes over TCP in two reads.
	tcp := Packet{Time: time.Unix(1700000000, 0), Transport: "TCP", Src: src, Dst: dst}
	for _, part := range [][]byte{invite[:30], invite[30:]} {
		tcp.Payload = part
		x.Offer(Item{Packet: tcp, Conn: "a|b", Route: route})
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := route.HEP.Append(nil, &Packet{Time: tcp.Time, Transport: "TCP", Src: src, Dst: dst, Payload: invite}, "call-1")
	if !bytes.Equal(buf[:n], want) {
		t.Errorf("got %q\nwant %q", buf[:n], want)
	}
	x.Close()
	if got := x.Counts(); got.Sent != 1 || got.Dropped["queue"] != 0 {
		t.Errorf("counts %+v, want 1 sent, none dropped", got)
	}
}

func TestExporterDropsWhenFull(t *testing.T) {
	x := NewExporter(nil, nil)
	hold, taken := make(chan struct{}), make(chan struct{}, 1)
	route := &Route{Select: func([]byte) (bool, bool, bool) {
		select {
		case taken <- struct{}{}:
		default:
		}
		<-hold
		return false, false, false
	}}
	it := Item{Packet: Packet{Transport: "UDP", Payload: []byte("x")}, Route: route}
	x.Offer(it) // taken and held
	select {
	case <-taken:
	case <-time.After(5 * time.Second):
		t.Fatal("the exporter did not take the first item")
	}
	for range QueueSize + 9 {
		x.Offer(it) // QueueSize wait; the rest drop
	}
	if got := x.Counts().Dropped["queue"]; got != 9 {
		t.Errorf("dropped %d, want 9", got)
	}
	close(hold)
	x.Close()
}

// TestExporterWritesPcap writes the pcap files of two calls and reads one
// back with tshark, which must see SIP with the right addresses.
func TestExporterWritesPcap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pcap")
	x := NewExporter(nil, nil)
	route := &Route{PcapDir: dir, Select: func([]byte) (bool, bool, bool) { return false, true, false }}
	// Ports other than 5060: tshark must find the SIP by itself.
	a, b := netip.MustParseAddrPort("127.0.0.1:40002"), netip.MustParseAddrPort("[::1]:40000")
	now := time.Now()
	x.Offer(Item{Packet: Packet{Time: now, Transport: "UDP", Src: a, Dst: b, Payload: message("INVITE", "one@h")}, Route: route})
	x.Offer(Item{Packet: Packet{Time: now, Transport: "TLS", Src: b, Dst: a, Payload: message("BYE", "one@h")}, Route: route})
	x.Offer(Item{Packet: Packet{Time: now, Transport: "UDP", Src: a, Dst: b, Payload: message("INVITE", "two/h")}, Route: route})
	x.Close()
	if got := x.Counts(); got.Written != 3 {
		t.Fatalf("counts %+v, want 3 written", got)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.pcap"))
	if len(names) != 2 {
		t.Fatalf("files %q, want one per call", names)
	}
	file := filepath.Join(dir, "one@h.pcap")
	data, err := os.ReadFile(file)
	if err != nil || !bytes.HasPrefix(data, PcapHeader()) {
		t.Fatalf("%s: %v, or no pcap header", file, err)
	}
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed: make test-deps installs it")
		}
		t.Skip("tshark is not installed (Debian package tshark): make test-deps installs it")
	}
	out, err := exec.Command(tshark, "-r", file, "-Y", "sip", "-T", "fields",
		"-e", "ipv6.src", "-e", "ipv6.dst", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "sip.Method", "-e", "sip.Call-ID").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	want := "::ffff:127.0.0.1\t::1\t40002\t40000\tINVITE\tone@h\n::1\t::ffff:127.0.0.1\t40000\t40002\tBYE\tone@h\n"
	if got := strings.ReplaceAll(string(out), "\r", ""); got != want {
		t.Errorf("tshark read:\n%s\nwant:\n%s", got, want)
	}
}

// TestExporterTCP sends HEP over TCP: packets follow one another on the
// stream, and a collector that is down drops what comes meanwhile, counted,
// until the exporter dials again.
func TestExporterTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	x := NewExporter(nil, nil)
	defer x.Close()
	route := &Route{Address: addr, Select: func([]byte) (bool, bool, bool) { return true, false, false }}
	p := Packet{Time: time.Unix(1, 0), Transport: "UDP", Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: netip.MustParseAddrPort("127.0.0.1:2")}
	for _, id := range []string{"one", "two"} {
		p.Payload = message("OPTIONS", id)
		x.Offer(Item{Packet: p, Route: route})
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, id := range []string{"one", "two"} {
		head := make([]byte, 6)
		if _, err := io.ReadFull(conn, head); err != nil {
			t.Fatal(err)
		}
		rest := make([]byte, int(binary.BigEndian.Uint16(head[4:]))-6)
		if _, err := io.ReadFull(conn, rest); err != nil {
			t.Fatal(err)
		}
		if string(head[:4]) != "HEP3" || !bytes.Contains(rest, []byte("Call-ID: "+id)) {
			t.Fatalf("packet %s: %q%q", id, head, rest)
		}
	}
	conn.Close()
	l.Close()
	deadline := time.Now().Add(5 * time.Second)
	for x.Counts().Dropped["send"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no send counted as dropped with the collector gone: %+v", x.Counts())
		}
		x.Offer(Item{Packet: p, Route: route})
		time.Sleep(20 * time.Millisecond)
	}
}
