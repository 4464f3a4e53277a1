package engine

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	_ "github.com/switchboard-sip/switchboard/stages/calllog"
	_ "github.com/switchboard-sip/switchboard/stages/rewrite"
)

// BenchmarkEngineCall measures what one call costs the proxy: the real
// engine with the chain of examples/seed.toml and a memory location
// store, on loopback UDP, between a caller and a registered callee on raw
// sockets (INVITE, 100/180/200, ACK and BYE along the Record-Route, 200).
// The phones allocate next to nothing, so the figures are the proxy's
// (and sipgo's): allocs/call and B/call are what a call allocates,
// cpu-ns/call the CPU time it takes (the process's, the phones'
// included), ns/op its latency, one call at a time. retained-B/call is
// the heap still in use right after the last call, after a collection,
// per call: what a call holds while its transactions linger
// (server.linger, 5 s by default), so that at R calls/s the proxy holds
// about R × linger × retained-B/call. It is meaningful only while the run
// lasts less than the linger: use -benchtime 2000x.
// SWITCHBOARD_HEAPPROFILE names a file for the heap profile at that point.
func BenchmarkEngineCall(b *testing.B) {
	c := newSeedCore(b)
	proxy := netip.MustParseAddrPort(c.addr)
	caller, callee := newBenchPhone(b, "alice", proxy), newBenchPhone(b, "bob", proxy)
	caller.peer, callee.peer = callee, caller
	callee.register(b)
	caller.call(b, callee, -1) // the first call warms the pools and the location cache

	heapBefore := measureEach(b, "call", func(i int) { caller.call(b, callee, i) })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if path := os.Getenv("SWITCHBOARD_HEAPPROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	b.ReportMetric((float64(after.HeapInuse)-float64(heapBefore))/float64(b.N), "retained-B/call")
	awaitLinger(b, c)
}

// BenchmarkEngineRegister measures what one REGISTER costs the proxy, as
// BenchmarkEngineCall measures a call: the chain of examples/seed.toml
// with a memory location store, a phone on a raw UDP socket registering
// again and again (a new Call-ID each time: the registrar replaces its
// binding), one REGISTER at a time.
func BenchmarkEngineRegister(b *testing.B) {
	c := newSeedCore(b)
	phone := newBenchPhone(b, "alice", netip.MustParseAddrPort(c.addr))
	phone.register(b)
	measureEach(b, "register", func(i int) { phone.registerAgain(b, i+1) })
	awaitLinger(b, c)
}

// newSeedCore starts the engine with the chain of examples/seed.toml and
// a memory location store.
func newSeedCore(b *testing.B) *core {
	seed, err := os.ReadFile("../../examples/seed.toml")
	if err != nil {
		b.Fatal(err)
	}
	_, chain, _ := strings.Cut(string(seed), "\n[[stage]]")
	c := newCoreOn(b, "state_dir = \""+b.TempDir()+"\"\n", "[[stage]]"+chain, Options{})
	c.e.Start()
	return c
}

// measureEach runs step b.N times and reports what each took of the
// process, per unit: its CPU time (cpu-ns), allocations and bytes
// allocated. It returns the heap in use before the first, after a
// collection.
func measureEach(b *testing.B, unit string, step func(i int)) (heapBefore uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cpu := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		step(i)
	}
	b.StopTimer()
	cpu = cpuTime() - cpu
	runtime.ReadMemStats(&after)
	n := float64(b.N)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/"+unit)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/"+unit)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/"+unit)
	return before.HeapInuse
}

// awaitLinger waits for the benchmark's transactions to end, so that the
// next run's measure collects none of them.
func awaitLinger(b *testing.B, c *core) {
	pollFor(b, config.DefaultLinger+coreWait, "every transaction to end after the linger",
		func() bool { return c.e.InFlight() == 0 && c.e.Lingering() == 0 })
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPhone is a SIP phone on a raw UDP socket that plays its part of a
// call in the benchmark's goroutine, with buffers it reuses.
type benchPhone struct {
	name  string
	conn  *net.UDPConn
	self  string // "127.0.0.1:port"
	proxy netip.AddrPort
	in    []byte // the last datagram read
	from  netip.AddrPort
	buf   []byte
	out   []byte
	// peer is the other phone of the call; skips and skipped count and
	// keep the datagrams await passed over, for a benchmark that failed.
	peer    *benchPhone
	skips   int
	skipped []byte
}

func newBenchPhone(b *testing.B, name string, proxy netip.AddrPort) *benchPhone {
	conn := listenUDP(b, "127.0.0.1")
	b.Cleanup(func() { conn.Close() })
	return &benchPhone{name: name, conn: conn, self: conn.LocalAddr().String(), proxy: proxy,
		buf: make([]byte, 65535), out: make([]byte, 0, 4096)}
}

// register binds the phone's Contact to its name at example.org.
func (p *benchPhone) register(b *testing.B) { p.registerAgain(b, 0) }

// registerAgain sends REGISTER number i of the phone (a Call-ID and a
// branch of its own) and waits for its 200.
func (p *benchPhone) registerAgain(b *testing.B, i int) {
	p.conn.SetReadDeadline(time.Now().Add(coreWait))
	p.start("REGISTER", "sip:example.org", "reg", i, 1)
	p.out = append(p.out, "To: <sip:"...)
	p.out = append(p.out, p.name...)
	p.out = append(p.out, "@example.org>\r\nCSeq: 1 REGISTER\r\nExpires: 3600\r\n"...)
	p.end(nil)
	p.send(b, p.proxy)
	p.await(b, "200 to REGISTER", func() bool { return p.isResponse("200", "1 REGISTER") })
}

// benchSDP is the body of the INVITE and its 200.
var benchSDP = []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")

// call places call i to the callee and hangs it up, as a UA would: the ACK
// and the BYE go to the callee's Contact along the Record-Route of the 200.
func (p *benchPhone) call(b *testing.B, callee *benchPhone, i int) {
	deadline := time.Now().Add(coreWait)
	p.conn.SetReadDeadline(deadline)
	callee.conn.SetReadDeadline(deadline)

	p.start("INVITE", "sip:"+callee.name+"@example.org", "inv", i, 1)
	p.out = append(p.out, "To: <sip:"...)
	p.out = append(p.out, callee.name...)
	p.out = append(p.out, "@example.org>\r\nCSeq: 1 INVITE\r\n"...)
	p.end(benchSDP)
	p.send(b, p.proxy)

	callee.await(b, "INVITE", func() bool { return callee.isRequest("INVITE") })
	from := callee.from
	callee.reply(b, from, "180 Ringing", nil)
	callee.reply(b, from, "200 OK", benchSDP)

	p.await(b, "200 to INVITE", func() bool { return p.isResponse("200", "1 INVITE") })
	// The dialog's route: the Record-Route of the 200, reversed, and the
	// callee's Contact; its To carries the callee's tag.
	var route [4][]byte
	routes := 0
	var to, contact []byte
	forHeaders(p.in, func(name, value []byte) {
		switch {
		case bytes.EqualFold(name, []byte("Record-Route")) && routes < len(route):
			route[routes] = value
			routes++
		case bytes.EqualFold(name, []byte("To")):
			to = value
		case bytes.EqualFold(name, []byte("Contact")):
			contact = bytes.TrimSuffix(bytes.TrimPrefix(value, []byte("<")), []byte(">"))
		}
	})
	var dialog [512]byte
	d := append(dialog[:0], to...)
	toEnd := len(d)
	d = append(d, contact...)
	contactEnd := len(d)
	var rr [4][]byte
	for j := range routes {
		start := len(d)
		d = append(d, route[routes-1-j]...)
		rr[j] = d[start:]
	}
	to, contact = d[:toEnd], d[toEnd:contactEnd]

	for _, m := range [2]struct {
		method string
		seq    int
	}{{"ACK", 1}, {"BYE", 2}} {
		p.inDialog(m.method, contact, to, rr[:routes], i, m.seq)
		p.send(b, p.proxy)
		callee.await(b, m.method, func() bool { return callee.isRequest(m.method) })
	}
	callee.reply(b, callee.from, "200 OK", nil)
	p.await(b, "200 to BYE", func() bool { return p.isResponse("200", "2 BYE") })
}

// start begins a request of the phone's in call i: the request line, a
// Via, From and Call-ID.
func (p *benchPhone) start(method, ruri, kind string, i, seq int) {
	p.out = appendRequestLine(p.out[:0], method, ruri, p.self, kind, i)
	p.out = append(p.out, '-')
	p.out = strconv.AppendInt(p.out, int64(seq), 10)
	p.out = append(p.out, "\r\nMax-Forwards: 70\r\nFrom: <sip:"...)
	p.out = append(p.out, p.name...)
	p.out = append(p.out, "@example.org>;tag="...)
	p.out = append(p.out, kind...)
	p.out = strconv.AppendInt(p.out, int64(i), 10)
	p.out = append(p.out, "\r\nCall-ID: "...)
	p.out = append(p.out, kind...)
	p.out = strconv.AppendInt(p.out, int64(i), 10)
	p.out = append(p.out, "\r\n"...)
}

// appendRequestLine appends a request line and a Via from self whose
// branch ends with branch and i.
func appendRequestLine[URI string | []byte](out []byte, method string, ruri URI, self, branch string, i int) []byte {
	out = append(out, method...)
	out = append(out, ' ')
	out = append(out, ruri...)
	out = append(out, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	out = append(out, self...)
	out = append(out, ";branch=z9hG4bK-"...)
	out = append(out, branch...)
	return strconv.AppendInt(out, int64(i), 10)
}

// end adds the phone's Contact and body (nil for none) to a message.
func (p *benchPhone) end(body []byte) {
	p.out = append(p.out, "Contact: <sip:"...)
	p.out = append(p.out, p.name...)
	p.out = append(p.out, '@')
	p.out = append(p.out, p.self...)
	p.out = append(p.out, ">\r\n"...)
	if body != nil {
		p.out = append(p.out, "Content-Type: application/sdp\r\n"...)
	}
	p.out = append(p.out, "Content-Length: "...)
	p.out = strconv.AppendInt(p.out, int64(len(body)), 10)
	p.out = append(p.out, "\r\n\r\n"...)
	p.out = append(p.out, body...)
}

// inDialog makes the caller's request of call i in its dialog.
func (p *benchPhone) inDialog(method string, contact, to []byte, routes [][]byte, i, seq int) {
	p.out = appendRequestLine(p.out[:0], method, contact, p.self, method, i)
	p.out = append(p.out, "\r\n"...)
	for _, r := range routes {
		p.out = append(p.out, "Route: "...)
		p.out = append(p.out, r...)
		p.out = append(p.out, "\r\n"...)
	}
	p.out = append(p.out, "Max-Forwards: 70\r\nFrom: <sip:"...)
	p.out = append(p.out, p.name...)
	p.out = append(p.out, "@example.org>;tag=inv"...)
	p.out = strconv.AppendInt(p.out, int64(i), 10)
	p.out = append(p.out, "\r\nTo: "...)
	p.out = append(p.out, to...)
	p.out = append(p.out, "\r\nCall-ID: inv"...)
	p.out = strconv.AppendInt(p.out, int64(i), 10)
	p.out = append(p.out, "\r\nCSeq: "...)
	p.out = strconv.AppendInt(p.out, int64(seq), 10)
	p.out = append(p.out, ' ')
	p.out = append(p.out, method...)
	p.out = append(p.out, "\r\n"...)
	p.end(nil)
}

// reply answers the request last read with status ("200 OK"): its Via,
// Record-Route, From, To (with the phone's tag), Call-ID and CSeq, the
// phone's Contact, and body.
func (p *benchPhone) reply(b *testing.B, to netip.AddrPort, status string, body []byte) {
	p.out = append(p.out[:0], "SIP/2.0 "...)
	p.out = append(p.out, status...)
	p.out = append(p.out, "\r\n"...)
	forHeaders(p.in, func(name, value []byte) {
		for _, copied := range [...]string{"Via", "Record-Route", "From", "To", "Call-ID", "CSeq"} {
			if !bytes.EqualFold(name, []byte(copied)) {
				continue
			}
			p.out = append(p.out, copied...)
			p.out = append(p.out, ": "...)
			p.out = append(p.out, value...)
			if copied == "To" && !bytes.Contains(value, []byte(";tag=")) {
				p.out = append(p.out, ";tag="...)
				p.out = append(p.out, p.name...)
			}
			p.out = append(p.out, "\r\n"...)
		}
	})
	p.end(body)
	p.send(b, to)
}

func (p *benchPhone) send(b *testing.B, to netip.AddrPort) {
	if _, err := p.conn.WriteToUDPAddrPort(p.out, to); err != nil {
		b.Fatal(err)
	}
}

// await reads datagrams until one is what match wants.
func (p *benchPhone) await(b *testing.B, what string, match func() bool) {
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			b.Fatalf("%s waiting for %s: %v; it skipped %d datagrams, the last %q; %s", p.name, what, err, p.skips, p.skipped, p.peer.pending())
		}
		p.in, p.from = p.buf[:n], from
		if match() {
			p.skips = 0
			return
		}
		p.skips++
		line, _, _ := bytes.Cut(p.in, []byte("\r\n"))
		p.skipped = append(p.skipped[:0], line...)
	}
}

// pending says what the phone has read but not waited for, for a
// benchmark that failed.
func (p *benchPhone) pending() string {
	p.conn.SetReadDeadline(time.Now().Add(time.Second))
	var lines []string
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			return fmt.Sprintf("%s had %q pending", p.name, lines)
		}
		line, _, _ := bytes.Cut(p.buf[:n], []byte("\r\n"))
		lines = append(lines, string(line))
	}
}

// isRequest says whether the last datagram read is a method request.
func (p *benchPhone) isRequest(method string) bool {
	return bytes.HasPrefix(p.in, []byte(method)) && len(p.in) > len(method) && p.in[len(method)] == ' '
}

// isResponse says whether the last datagram read is a code response
// whose CSeq is cseq.
func (p *benchPhone) isResponse(code, cseq string) bool {
	if !bytes.HasPrefix(p.in, []byte("SIP/2.0 ")) || !bytes.HasPrefix(p.in[8:], []byte(code)) {
		return false
	}
	ok := false
	forHeaders(p.in, func(name, value []byte) {
		if bytes.EqualFold(name, []byte("CSeq")) {
			ok = string(value) == cseq
		}
	})
	return ok
}

// forHeaders calls f with the name and value of each header line of msg,
// in order (no folded lines: the proxy writes none).
func forHeaders(msg []byte, f func(name, value []byte)) {
	_, rest, _ := bytes.Cut(msg, []byte("\r\n"))
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			return
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok {
			f(bytes.TrimSpace(name), bytes.TrimSpace(value))
		}
	}
}
