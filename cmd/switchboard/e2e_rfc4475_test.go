package main

// TestTortureRFC4475 sends every torture message of RFC 4475 (the .dat files
// in testdata/rfc4475, copied from ../shared/testdata/rfc4475; read its
// README.md) to a running proxy over UDP, and checks what the proxy does
// with each against a table.
//
// The messages name foreign hosts (192.0.2.x, 10.0.0.1, example.com), so
// the test runs in a network namespace of its own (unshare -n) with only
// loopback up: the test re-executes the test binary there, with every IPv4
// address the messages name added to lo, so that whatever the proxy sends
// to a Via or a Contact stays in the namespace, where sinks listening on
// those addresses and the ports the headers name (tortureSinkPorts) record
// it. DNS lookups fail there at once, which is fine: the proxy must answer
// an error or give up, never crash.
//
// Each message is sent from an address of its own (127.0.1.n), where the
// answers are collected: on the port it was sent from (rport) and on the
// port of its top Via, as RFC 3261 18.2.2 has the proxy answer. So a late
// retransmission never counts for the next message.
//
// The proxy is authoritative for example.com and example.org, and runs the
// product's chain (parse, registrar, location, record_route, forward). A
// phone (torturePhone) is registered for the users the valid messages call
// (user, UserB, kumiko): it answers INVITE with 486 and any other request
// with 200, and records what it receives, so that the table can tell
// "forwarded" from "answered".

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tortureDir holds the RFC 4475 messages.
const tortureDir = "testdata/rfc4475"

const (
	// tortureQuiet is how long a message that must get no answer is
	// watched for one.
	tortureQuiet = time.Second
	// tortureFinal bounds the wait for a final response.
	tortureFinal = 5 * time.Second
	// torturePhoneIP is the loopback address of the registered phone.
	torturePhoneIP = "127.0.0.9"
)

// tortureUsers are registered at torturePhone, with their domain, so that
// the valid messages that call them are forwarded.
var tortureUsers = [][2]string{
	{"user", "example.com"},
	{"UserB", "example.com"},
	{"kumiko", "example.org"},
}

// tortureSinkPorts are the ports the messages' Via and Contact headers
// name (5060 when they name none); a sink listens on each, on every
// address of the namespace.
var tortureSinkPorts = []int{5060, 5061, 5050, 5070, 3002}

// tortureProxyPort is the proxy's UDP port on 127.0.0.1: the one the Route
// of mpart01.dat names, so that the proxy takes that Route as its own.
const tortureProxyPort = 5080

// tortureCase is what the proxy must do with one message.
type tortureCase struct {
	file string
	// code is the final response the sender must get; 0 means no response
	// at all (not even 100 Trying) within tortureQuiet: a response that
	// matches no transaction, or what has no request line, Via or CSeq to
	// answer.
	code int
	// forwarded means the request must reach the registered phone (which
	// answers it); otherwise the phone must receive nothing.
	forwarded bool
	// check, when set, looks further at what happened.
	check func(t *testing.T, o *tortureOutcome)
	// why is what RFC 4475 (and its README) expects, and why the outcome
	// is acceptable.
	why string
}

// tortureCases is the observed and accepted outcome of every message. The
// same outcomes are the table of docs/security.md.
var tortureCases = []tortureCase{
	// 3.1.1 Valid messages.
	{file: "wsinv.dat", code: 403, check: tortureViaKept, why: "V: processed: its branch has no magic cookie, so it is matched the RFC 2543 way (RFC 3261 17.2.3); its preloaded Route to services.example.com is not ours: 403. DEVIATION: sipgo keeps the spaces of `tag = 98asjd8` and `tag    = 1918181833n` in the parameter names, so the To tag is not seen (the request is taken for a new one) and the answer carries From and To as sipgo reads them"},
	{file: "intmeth.dat", code: 404, why: "V: unknown method for an unknown user: 404"},
	{file: "esc01.dat", code: 403, why: "V: well-formed; example.net is not ours: 403 Relaying Denied"},
	{file: "escnull.dat", code: 200, check: tortureContacts(2), why: "V: REGISTER with two contacts; %00 kept: 200 lists both"},
	{file: "esc02.dat", code: 403, why: "V: unknown method for registrar.example.com, not ours: 403 Relaying Denied"},
	{file: "lwsdisp.dat", code: 200, forwarded: true, why: "V: well-formed; forwarded, the phone answers 200"},
	{file: "longreq.dat", code: 486, forwarded: true, check: tortureLongreq, why: "V: long values; forwarded whole, every Via kept"},
	{file: "dblreq.dat", code: 200, check: tortureNoJunk, why: "V: the REGISTER is handled, the trailing octets ignored"},
	{file: "semiuri.dat", code: 404, why: "V: the user is `user;par=u@example.net`, not the registered `user`: 404"},
	{file: "transports.dat", code: 200, forwarded: true, why: "V: unknown Via transports are fine; forwarded"},
	{file: "mpart01.dat", code: 200, forwarded: true, check: tortureBodyKept, why: "V: framed by Content-Length; the binary body is forwarded intact"},
	{file: "unreason.dat", why: "V: a response that matches no transaction: dropped"},
	{file: "noreason.dat", why: "V: a response that matches no transaction: dropped"},

	// 3.1.2 Invalid messages.
	{file: "badinv01.dat", code: 400, check: tortureReason("malformed Via"), why: "I: sipgo cannot parse the Via: 400, its Via sent back as it came"},
	{file: "clerr.dat", code: 400, check: tortureReason("Content-Length larger than the message"), why: "I: Content-Length past the end of the datagram: 400"},
	{file: "ncl.dat", code: 400, check: tortureReason("malformed Content-Length"), why: "I: negative Content-Length: 400"},
	{file: "scalar02.dat", code: 400, check: tortureReason("malformed CSeq"), why: "I: CSeq over 2**31-1: 400"},
	{file: "scalarlg.dat", why: "I: a response with overlarge values: dropped"},
	{file: "quotbal.dat", code: 400, check: tortureReason("malformed To"), why: "I: unterminated quote: 400"},
	{file: "ltgtruri.dat", code: 400, check: tortureReason("malformed Request-URI"), why: "I: <> around the Request-URI: 400 (its Via, without branch, sent back without the branch the proxy gave it)"},
	{file: "lwsruri.dat", code: 400, check: tortureReason("malformed Request-Line"), why: "I: LWS in the Request-URI: 400"},
	{file: "lwsstart.dat", code: 400, check: tortureReason("malformed Request-Line"), why: "I: several SP in the request line: 400 (rejecting is allowed)"},
	{file: "trws.dat", code: 400, check: tortureReason("malformed Request-Line"), why: "I: SP after the version: 400 (rejecting is allowed)"},
	{file: "escruri.dat", code: 400, why: "I: headers in the Request-URI: 400"},
	{file: "baddate.dat", code: 486, forwarded: true, why: "I: a bad Date does not matter to a proxy: forwarded"},
	{file: "regbadct.dat", code: 200, check: tortureHeader("Contact", "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"), why: "I: Contact without <>: the <> are inferred, ?Route=... stays URI headers: 200"},
	{file: "badaspec.dat", code: 400, check: tortureReason("malformed To"), why: "I: spaces in an addr-spec: 400"},
	{file: "baddn.dat", code: 400, check: tortureReason("no empty line after the header fields"), why: "I: non-token display name, and no empty line: 400 (sipgo's parser stops at the missing line)"},
	{file: "badvers.dat", code: 505, why: "I: SIP/7.0: 505"},
	{file: "mismatch01.dat", code: 400, why: "I: CSeq method does not match: 400"},
	{file: "mismatch02.dat", code: 400, why: "I: unknown method, CSeq mismatch: 400 (501 preferred, 400 allowed)"},
	{file: "bigcode.dat", why: "I: status code over 699: sipgo drops it"},

	// 3.2 Transaction layer.
	{file: "badbranch.dat", code: 200, forwarded: true, why: "T: the branch is only the magic cookie; sipgo matches the transaction the RFC 2543 way: forwarded"},

	// 3.3 Application layer.
	{file: "insuf.dat", code: 400, why: "A: no Call-ID, From, To: 400"},
	{file: "unkscm.dat", code: 416, why: "A: unknown Request-URI scheme: 416"},
	{file: "novelsc.dat", code: 416, why: "A: soap.beep Request-URI, which sipgo cannot parse: 416 Unsupported URI Scheme"},
	{file: "unksm2.dat", code: 404, why: "A: To is not a SIP URI: 404 (RFC 3261 10.3 step 3; RFC 4475 suggests 400)"},
	{file: "bext01.dat", code: 420, check: tortureHeader("Unsupported", "noProxiesSupportThis, norDoAnyProxiesSupportThis"), why: "A: Proxy-Require: 420 with Unsupported"},
	{file: "invut.dat", code: 486, forwarded: true, why: "A: unknown Content-Type: a proxy forwards it"},
	{file: "regaut01.dat", code: 200, why: "A: unknown Authorization scheme: the registrar (no auth stage here) ignores it: 200"},
	{file: "multi01.dat", code: 400, why: "A: several values in single-value headers: 400"},
	{file: "mcl01.dat", code: 400, why: "A: several Content-Length values: sipgo frames it by the datagram; the parse stage answers 400"},
	{file: "bcast.dat", why: "A: a 200 with a broadcast Via: dropped, nothing sent to 255.255.255.255"},
	{file: "zeromf.dat", code: 483, why: "A: Max-Forwards 0 at a proxy: 483, not forwarded"},
	{file: "cparam01.dat", code: 200, check: tortureHeader("Contact", "<sip:+19725552222@gw1.example.net>;unknownparam"), why: "A: REGISTER with a contact-param: 200, a header parameter"},
	{file: "cparam02.dat", code: 200, check: tortureHeader("Contact", "<sip:+19725552222@gw1.example.net;unknownparam>"), why: "A: REGISTER with a url-parameter: 200, a URI parameter"},
	{file: "regescrt.dat", code: 200, check: tortureHeader("Contact", "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"), why: "A: REGISTER with an escaped header in the Contact URI: 200, kept in the binding"},
	{file: "sdp01.dat", code: 486, forwarded: true, why: "A: an unacceptable Accept is the UAS's business: forwarded"},

	// 3.4 Backward compatibility.
	{file: "inv2543.dat", code: 486, forwarded: true, check: tortureViaRelayed, why: "B: processed: no branch and no From tag, so it is matched the RFC 2543 way (RFC 3261 17.2.3), and no Contact is asked of an RFC 2543 client; forwarded, the phone answers 486"},

	// Not in RFC 4475 (the archive only).
	{file: "test.dat", why: "-: no SIP version, no Via, no CSeq: dropped, as there is no one to answer"},
}

// tortureOutcome is what happened to one message.
type tortureOutcome struct {
	file string
	data []byte
	// responses are the status lines the sender received, in order.
	responses []string
	// final is the final response, nil without one, and finalRaw its
	// bytes; late are the responses that came after it (retransmissions,
	// or answers to something else in the datagram).
	final    *sip.Response
	finalRaw []byte
	late     []*sip.Response
	// phone are the requests the registered phone received; sinks the
	// messages the sinks received (first lines).
	phone []*sip.Request
	sinks []string
}

// code returns the final status code, or 0.
func (o *tortureOutcome) code() int {
	if o.final == nil {
		return 0
	}
	return o.final.StatusCode
}

func (o *tortureOutcome) String() string {
	var phone []string
	for _, r := range o.phone {
		phone = append(phone, string(r.Method))
	}
	return fmt.Sprintf("%s: responses %q, phone received %q, sinks received %q", o.file, o.responses, phone, o.sinks)
}

func TestTortureRFC4475(t *testing.T) {
	if os.Getenv("SWITCHBOARD_TORTURE_NETNS") == "" {
		t.Parallel()
		requireE2E(t)
		tortureReexec(t)
		return
	}

	// In the namespace.
	if !tortureHasAddr("192.0.2.1") {
		t.Fatal("192.0.2.1 is not an address of this host: SWITCHBOARD_TORTURE_NETNS is set outside the namespace TestTortureRFC4475 makes")
	}
	cases := map[string]tortureCase{}
	for _, tc := range tortureCases {
		if _, dup := cases[tc.file]; dup {
			t.Fatalf("%s is twice in the table", tc.file)
		}
		cases[tc.file] = tc
	}
	files, err := filepath.Glob(filepath.Join(tortureDir, "*.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tortureCases) {
		t.Errorf("%d .dat files in %s, %d in the table", len(files), tortureDir, len(tortureCases))
	}
	var names []string
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := cases[name]; !ok {
			t.Errorf("%s has no entry in the table", name)
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)

	sinks := tortureStartSinks(t)
	observe := os.Getenv("SWITCHBOARD_TORTURE_OBSERVE") != ""
	// Messages that share a transaction key (the RFC reuses branches)
	// would be taken for retransmissions by a proxy that saw the first:
	// each group gets a proxy of its own, one after the other.
	n := 0
	for gi, group := range tortureGroups(t, names) {
		t.Run(fmt.Sprintf("group%d", gi), func(t *testing.T) {
			p, metrics := tortureStartProxy(t)
			phone := tortureStartPhone(t)
			for _, u := range tortureUsers {
				phone.register(t, p.UDP, u[0], u[1])
			}
			for _, name := range group {
				n++
				tc := cases[name]
				o := tortureSendFile(t, p.UDP, name, n, phone, sinks, tc.code != 0)
				if observe {
					t.Logf("%s", o)
					if o.final != nil {
						t.Logf("%s final:\n%s", name, o.final)
					}
					for _, r := range o.phone {
						t.Logf("%s forwarded:\n%s", name, r)
					}
					continue
				}
				tortureCheck(t, tc, o)
			}
			// Nothing left in flight, and the proxy still answers.
			tortureExpectNoneInFlight(t, metrics)
			tortureExpectOptions200(t, p.UDP)
		})
	}
}

// tortureReexec runs the test again in a network namespace of its own,
// with loopback up and every IPv4 address the messages name on it.
func tortureReexec(t *testing.T) {
	t.Helper()
	addrs, err := tortureAddresses()
	if err != nil {
		t.Fatal(err)
	}
	reexecInNetns(t, "TestTortureRFC4475", "SWITCHBOARD_TORTURE_NETNS", addrs)
}

// reexecInNetns runs the test named test again, in a network namespace of
// its own (unshare -n) with loopback up and addrs on it, and with env set
// to 1, which the test reads to know it is inside.
func reexecInNetns(t *testing.T, test, env string, addrs []string) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is not installed: this test needs it to run in a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is not installed: this test needs it to set up loopback in a network namespace")
	}
	script := "ip link set lo up"
	for _, a := range addrs {
		script += " && ip addr add " + a + "/32 dev lo"
	}
	script += ` && exec "$0" "$@"`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{"-n", "sh", "-c", script, os.Args[0], "-test.run", "^" + test + "$", "-test.v", "-test.count=1"}
	cmd := exec.CommandContext(ctx, unshare, args...)
	cmd.Env = append(os.Environ(), env+"=1", "SWITCHBOARD_BIN="+switchboardBin)
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace (unshare -n, lo with %s):\n%s", strings.Join(addrs, " "), out)
	if err != nil {
		t.Fatalf("the test in the network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatal("the test in the network namespace did not run")
	}
}

var tortureIPv4 = regexp.MustCompile(`\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b`)

// tortureAddresses returns the unicast IPv4 addresses outside 127/8 that
// the messages name.
func tortureAddresses() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(tortureDir, "*.dat"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .dat files in %s", tortureDir)
	}
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range tortureIPv4.FindAllString(string(data), -1) {
			ip := net.ParseIP(m).To4()
			if ip == nil || ip.IsLoopback() || ip.IsUnspecified() || ip.Equal(net.IPv4bcast) || ip.IsMulticast() {
				continue
			}
			seen[ip.String()] = true
		}
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out, nil
}

func tortureHasAddr(ip string) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
			return true
		}
	}
	return false
}

// tortureGroups splits the files so that no two requests in one group
// share a server transaction key (top Via branch and sent-by, method).
func tortureGroups(t *testing.T, names []string) [][]string {
	t.Helper()
	var groups [][]string
	var keys []map[string]bool
	for _, name := range names {
		key := ""
		if data, err := os.ReadFile(filepath.Join(tortureDir, name)); err != nil {
			t.Fatal(err)
		} else if msg, err := sip.ParseMessage(data); err == nil {
			if req, ok := msg.(*sip.Request); ok && req.Via() != nil {
				// sipgo keys a transaction on the CSeq method (mismatch01
				// is an OPTIONS with CSeq INVITE, and baddate's branch).
				method := req.Method
				if cs := req.CSeq(); cs != nil {
					method = cs.MethodName
				}
				branch, _ := req.Via().Params.Get("branch")
				key = fmt.Sprintf("%s|%s|%d|%s", branch, strings.ToLower(req.Via().Host), req.Via().Port, method)
			}
		}
		placed := false
		for i := range groups {
			if key == "" || !keys[i][key] {
				groups[i] = append(groups[i], name)
				if key != "" {
					keys[i][key] = true
				}
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, []string{name})
			keys = append(keys, map[string]bool{key: true})
		}
	}
	return groups
}

// tortureStartProxy starts a proxy for the torture messages on
// 127.0.0.1:tortureProxyPort (UDP), with its metrics on a free port; it
// returns the proxy and the metrics URL.
func tortureStartProxy(t *testing.T) (*proxy, string) {
	t.Helper()
	httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	config := fmt.Sprintf(`[server]
domains = ["example.com", "example.org"]
drain_timeout = "5s"

[store]
backend = "memory"

[http]
listen = %q

[log]
level = "debug"

[[stage]]
use = "parse"

[[stage]]
use = "registrar"

[[stage]]
use = "location"

[[stage]]
use = "record_route"

[[stage]]
use = "forward"
fr_timeout = "2s"
invite_timeout = "5s"
`, httpAddr)
	p := startProxy(t, config, fmt.Sprintf("udp://%s:%d", proxyIP, tortureProxyPort))
	return p, "http://" + httpAddr + "/metrics"
}

// tortureSink records every datagram sent to one of the tortureSinkPorts
// of an address the messages name, and answers requests as torturePhone
// does.
type tortureSink struct {
	mu   sync.Mutex
	got  []string
	pcs  []net.PacketConn
	done sync.WaitGroup
}

func tortureStartSinks(t *testing.T) *tortureSink {
	t.Helper()
	addrs, err := tortureAddresses()
	if err != nil {
		t.Fatal(err)
	}
	s := &tortureSink{}
	t.Cleanup(func() {
		for _, pc := range s.pcs {
			pc.Close()
		}
		s.done.Wait()
	})
	for _, ip := range append(addrs, proxyIP) {
		for _, port := range tortureSinkPorts {
			if ip == proxyIP && port == tortureProxyPort {
				continue
			}
			pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				t.Fatalf("sink on %s:%d: %v", ip, port, err)
			}
			s.pcs = append(s.pcs, pc)
			s.done.Add(1)
			go func() {
				defer s.done.Done()
				buf := make([]byte, 65535)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					data := slices.Clone(buf[:n])
					line, _, _ := strings.Cut(string(data), "\r\n")
					s.mu.Lock()
					s.got = append(s.got, fmt.Sprintf("%s from %s: %s", pc.LocalAddr(), from, line))
					s.mu.Unlock()
					tortureAnswer(pc, from, data)
				}
			}()
		}
	}
	return s
}

// take returns what the sinks received since the last call.
func (s *tortureSink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// tortureAnswer answers a request as a phone would: 486 to INVITE, nothing
// to ACK, 200 to anything else. Responses and what does not parse are not
// answered.
func tortureAnswer(pc net.PacketConn, to net.Addr, data []byte) *sip.Request {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return nil
	}
	switch {
	case req.IsAck():
	case req.IsInvite():
		_, _ = pc.WriteTo([]byte(sip.NewResponseFromRequest(req, 486, "Busy Here", nil).String()), to)
	default:
		_, _ = pc.WriteTo([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()), to)
	}
	return req
}

// torturePhone is the phone registered for tortureUsers: it answers what
// the proxy forwards (see tortureAnswer) and records it.
type torturePhone struct {
	pc        net.PacketConn
	port      int
	responses chan *sip.Response
	mu        sync.Mutex
	got       []*sip.Request
	done      chan struct{}
}

func tortureStartPhone(t *testing.T) *torturePhone {
	t.Helper()
	return tortureStartSlowPhone(t, 0)
}

// tortureStartSlowPhone starts a phone that waits delay before it answers
// a request.
func tortureStartSlowPhone(t *testing.T, delay time.Duration) *torturePhone {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(torturePhoneIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ph := &torturePhone{pc: pc, port: pc.LocalAddr().(*net.UDPAddr).Port, responses: make(chan *sip.Response, 16), done: make(chan struct{})}
	go func() {
		defer close(ph.done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			data := slices.Clone(buf[:n])
			if msg, err := sip.ParseMessage(data); err == nil {
				if res, ok := msg.(*sip.Response); ok {
					select {
					case ph.responses <- res:
					default:
					}
					continue
				}
			}
			time.Sleep(delay)
			if req := tortureAnswer(pc, from, data); req != nil {
				ph.mu.Lock()
				ph.got = append(ph.got, req)
				ph.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-ph.done
	})
	return ph
}

// register registers user@domain at the proxy with the phone's address as
// Contact, sent from the phone's socket (the binding's source).
func (ph *torturePhone) register(t *testing.T, proxyAddr, user, domain string) {
	t.Helper()
	addr := net.JoinHostPort(torturePhoneIP, strconv.Itoa(ph.port))
	req := strings.Join([]string{
		"REGISTER sip:" + domain + " SIP/2.0",
		"Via: SIP/2.0/UDP " + addr + ";branch=z9hG4bK-torture-reg-" + user + ";rport",
		"Max-Forwards: 70",
		"From: <sip:" + user + "@" + domain + ">;tag=torture-" + user,
		"To: <sip:" + user + "@" + domain + ">",
		"Call-ID: torture-reg-" + user,
		"CSeq: 1 REGISTER",
		"Contact: <sip:" + user + "@" + addr + ">",
		"Expires: 3600",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	dst, err := net.ResolveUDPAddr("udp4", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ph.pc.WriteTo([]byte(req), dst); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-ph.responses:
		if res.StatusCode != 200 {
			t.Fatalf("registering %s@%s: %d %s", user, domain, res.StatusCode, res.Reason)
		}
	case <-time.After(tortureFinal):
		t.Fatalf("registering %s@%s: no answer", user, domain)
	}
}

// take returns the requests the phone received since the last call.
func (ph *torturePhone) take() []*sip.Request {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	out := ph.got
	ph.got = nil
	return out
}

// tortureSendFile sends the n-th message to the proxy, from an address of
// its own (127.0.1.n), and collects what comes back to that address, on
// the port it sent from and on the port of its top Via (or 5060 and 5061,
// where the proxy answers a Via without rport): until a final response
// when one is expected (tortureFinal at most), else for tortureQuiet. A
// non-2xx final response to an INVITE is acknowledged, as a phone would.
func tortureSendFile(t *testing.T, proxyAddr, name string, n int, phone *torturePhone, sinks *tortureSink, wantFinal bool) *tortureOutcome {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tortureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	o := &tortureOutcome{file: name, data: data}
	var req *sip.Request
	ports := []int{5060, 5061}
	if msg, err := sip.ParseMessage(data); err == nil {
		if r, ok := msg.(*sip.Request); ok {
			req = r
			if v := r.Via(); v != nil && v.Port > 0 && !slices.Contains(ports, v.Port) {
				ports = append(ports, v.Port)
			}
		}
	}
	phone.take()
	sinks.take()
	ip := fmt.Sprintf("127.0.1.%d", n)
	got := make(chan []byte, 64)
	var conns []net.PacketConn
	var readers sync.WaitGroup
	for _, port := range ports {
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conns = append(conns, pc)
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 65535)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				select {
				case got <- slices.Clone(buf[:n]):
				default:
				}
			}
		}()
	}
	defer func() {
		for _, pc := range conns {
			pc.Close()
		}
		readers.Wait()
	}()
	dst, err := net.ResolveUDPAddr("udp4", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].WriteTo(data, dst); err != nil {
		t.Fatalf("%s: send: %v", name, err)
	}
	wait := tortureQuiet
	if wantFinal {
		wait = tortureFinal
	}
	timeout := time.After(wait)
collect:
	for o.final == nil {
		select {
		case <-timeout:
			break collect
		case raw := <-got:
			line, _, _ := strings.Cut(string(raw), "\r\n")
			o.responses = append(o.responses, line)
			msg, err := sip.ParseMessage(raw)
			if err != nil {
				// The answer to a request sipgo cannot parse carries the
				// request's own header fields, which need not parse either;
				// its status line must.
				res, ok := tortureStatusLine(raw)
				if req != nil || !ok {
					t.Errorf("%s: the proxy sent a message sipgo cannot parse (%v):\n%s", name, err, raw)
					continue
				}
				msg = res
			}
			if res, ok := msg.(*sip.Response); ok && res.StatusCode >= 200 {
				o.final, o.finalRaw = res, raw
				if req != nil && req.IsInvite() && res.StatusCode >= 300 {
					_, _ = conns[0].WriteTo([]byte(tortureAck(req, res)), dst)
				}
			}
		}
	}
	// Room for a stray message to reach the phone, a sink, or the sender.
	time.Sleep(100 * time.Millisecond)
	for len(got) > 0 {
		if msg, err := sip.ParseMessage(<-got); err == nil {
			if res, ok := msg.(*sip.Response); ok {
				o.late = append(o.late, res)
			}
		}
	}
	o.phone = phone.take()
	o.sinks = sinks.take()
	return o
}

// tortureAck is the ACK to a non-2xx final response res to req (RFC 3261
// 17.1.1.3).
func tortureAck(req *sip.Request, res *sip.Response) string {
	lines := []string{"ACK " + req.Recipient.String() + " SIP/2.0"}
	if v := req.Via(); v != nil {
		lines = append(lines, "Via: "+v.Value())
	}
	lines = append(lines, "Max-Forwards: 70")
	if f := req.From(); f != nil {
		lines = append(lines, "From: "+f.Value())
	}
	if to := res.To(); to != nil {
		lines = append(lines, "To: "+to.Value())
	}
	if id := req.CallID(); id != nil {
		lines = append(lines, "Call-ID: "+id.Value())
	}
	if cs := req.CSeq(); cs != nil {
		lines = append(lines, fmt.Sprintf("CSeq: %d ACK", cs.SeqNo))
	}
	return strings.Join(append(lines, "Content-Length: 0", "", ""), "\r\n")
}

// tortureCheck compares an outcome with its case.
func tortureCheck(t *testing.T, tc tortureCase, o *tortureOutcome) {
	t.Helper()
	if tc.code == 0 && len(o.responses) > 0 {
		t.Errorf("%s (%s): got %q, want no response within %v", tc.file, tc.why, o.responses, tortureQuiet)
	}
	if got := o.code(); tc.code != 0 && got != tc.code {
		t.Errorf("%s (%s): final response %d, want %d (%s)", tc.file, tc.why, got, tc.code, o)
	}
	if tc.forwarded && len(o.phone) == 0 {
		t.Errorf("%s (%s): the phone received nothing, want the request forwarded (%s)", tc.file, tc.why, o)
	}
	if !tc.forwarded && len(o.phone) > 0 {
		t.Errorf("%s (%s): the phone received %d requests, want none (%s)", tc.file, tc.why, len(o.phone), o)
	}
	if len(o.sinks) > 0 {
		t.Errorf("%s (%s): something left for a Via or Contact address: %q", tc.file, tc.why, o.sinks)
	}
	if tc.check != nil && !t.Failed() {
		tc.check(t, o)
	}
}

// tortureStatusLine reads the status line of an answer sipgo cannot parse.
func tortureStatusLine(raw []byte) (*sip.Response, bool) {
	line, _, _ := strings.Cut(string(raw), "\r\n")
	version, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if version != "SIP/2.0" || err != nil || n < 100 || n > 699 {
		return nil, false
	}
	return sip.NewResponse(n, reason), true
}

// tortureReason checks the reason phrase of a 400: "Bad Request: " and
// what is wrong with the request. It also checks tortureViaKept.
func tortureReason(what string) func(*testing.T, *tortureOutcome) {
	return func(t *testing.T, o *tortureOutcome) {
		t.Helper()
		if want := "Bad Request: " + what; o.final.Reason != want {
			t.Errorf("%s: reason %q, want %q", o.file, o.final.Reason, want)
		}
		tortureViaKept(t, o)
	}
}

// tortureViaKept checks that the answer's top Via is the request's, as
// sent: without the branch the proxy gives a request that has no RFC 3261
// one (RFC 3261 8.2.6.2, 17.2.3).
func tortureViaKept(t *testing.T, o *tortureOutcome) {
	t.Helper()
	got, _ := tortureFirstVia(o.finalRaw)
	want, ok := tortureFirstVia(o.data)
	if msg, err := sip.ParseMessage(o.data); err == nil {
		// sipgo writes the Via it read.
		want, ok = msg.(*sip.Request).Via().Value(), true
		if via := o.final.Via(); via != nil {
			got = via.Value()
		}
	}
	if !ok || got != want {
		t.Errorf("%s: the answer's top Via is %q, want %q:\n%s", o.file, got, want, o.finalRaw)
	}
}

// tortureViaRelayed is tortureViaKept for a response relayed from the
// phone: the Via is the one sent, plus the received parameter the proxy
// added on the way in (RFC 3261 18.2.1: the sent-by is a name).
func tortureViaRelayed(t *testing.T, o *tortureOutcome) {
	t.Helper()
	var got string
	if via := o.final.Via(); via != nil {
		if _, ok := via.Params.Get("received"); !ok {
			t.Errorf("%s: the relayed answer's top Via has no received parameter: %q", o.file, via.Value())
		}
		via = via.Clone()
		via.Params.Remove("received")
		got = via.Value()
	}
	want, ok := tortureFirstVia(o.data)
	if msg, err := sip.ParseMessage(o.data); err == nil {
		want, ok = msg.(*sip.Request).Via().Value(), true
	}
	if !ok || got != want {
		t.Errorf("%s: the relayed answer's top Via is %q (received taken off), want %q:\n%s", o.file, got, want, o.finalRaw)
	}
}

// tortureFirstVia returns the first Via header value of a message, as
// sent: folded lines joined, white space runs made one space.
func tortureFirstVia(raw []byte) (string, bool) {
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for i, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "via") && !strings.EqualFold(strings.TrimSpace(name), "v") {
			continue
		}
		for _, next := range lines[i+2:] {
			if !strings.HasPrefix(next, " ") && !strings.HasPrefix(next, "\t") {
				break
			}
			value += " " + next
		}
		return strings.Join(strings.Fields(value), " "), true
	}
	return "", false
}

// tortureLongreq checks that longreq.dat went out whole: its long unknown
// header, and its 34 Vias under the proxy's own.
func tortureLongreq(t *testing.T, o *tortureOutcome) {
	t.Helper()
	fwd := o.phone[0]
	msg, err := sip.ParseMessage(o.data)
	if err != nil {
		t.Fatalf("%s: %v", o.file, err)
	}
	sent := msg.(*sip.Request)
	name := "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name"
	if h, want := fwd.GetHeader(name), sent.GetHeader(name); h == nil || want == nil || h.Value() != want.Value() {
		t.Errorf("%s: the forwarded request lost or changed %s:\n%s", o.file, name, fwd)
	}
	vias := func(m *sip.Request) int {
		n := 0
		for _, h := range m.GetHeaders("Via") {
			n += len(splitTopLevel(h.Value()))
		}
		return n
	}
	if got, want := vias(fwd), vias(sent)+1; got != want {
		t.Errorf("%s: the forwarded request has %d Via values, want %d:\n%s", o.file, got, want, fwd)
	}
}

// tortureContacts checks the number of Contact values of the final response.
func tortureContacts(n int) func(*testing.T, *tortureOutcome) {
	return func(t *testing.T, o *tortureOutcome) {
		t.Helper()
		got := 0
		for _, h := range o.final.GetHeaders("Contact") {
			got += len(splitTopLevel(h.Value()))
		}
		if got != n {
			t.Errorf("%s: the 200 lists %d contacts, want %d:\n%s", o.file, got, n, o.final)
		}
	}
}

// splitTopLevel splits a header value at the commas outside <> and quotes.
func splitTopLevel(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// tortureHeader checks a header of the final response.
func tortureHeader(name, want string) func(*testing.T, *tortureOutcome) {
	return func(t *testing.T, o *tortureOutcome) {
		t.Helper()
		for _, h := range o.final.GetHeaders(name) {
			if strings.Contains(h.Value(), want) {
				return
			}
		}
		t.Errorf("%s: the %d has no %s: %s:\n%s", o.file, o.code(), name, want, o.final)
	}
}

// tortureNoJunk checks that the INVITE in the trailing octets of
// dblreq.dat was neither answered nor forwarded (the phone and the sinks
// receiving nothing is checked for every message).
func tortureNoJunk(t *testing.T, o *tortureOutcome) {
	t.Helper()
	for _, res := range append([]*sip.Response{o.final}, o.late...) {
		if cs := res.CSeq(); cs == nil || cs.MethodName != sip.REGISTER {
			t.Errorf("%s: an answer to something else than the REGISTER:\n%s", o.file, res)
		}
	}
}

// tortureBodyKept checks that the forwarded request carries the message's
// body, byte for byte.
func tortureBodyKept(t *testing.T, o *tortureOutcome) {
	t.Helper()
	_, body, ok := bytes.Cut(o.data, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("%s: no body in the file", o.file)
	}
	if got := o.phone[0].Body(); !bytes.Equal(got, body) {
		t.Errorf("%s: the forwarded body (%d bytes) differs from the one sent (%d bytes)", o.file, len(got), len(body))
	}
}

// tortureExpectOptions200 checks that the proxy still answers: an OPTIONS
// to the proxy itself gets 200.
func tortureExpectOptions200(t *testing.T, proxyAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(callerIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	local := pc.LocalAddr().String()
	req := strings.Join([]string{
		"OPTIONS sip:" + proxyAddr + " SIP/2.0",
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-torture-alive-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ";rport",
		"Max-Forwards: 70",
		"From: <sip:alive@" + local + ">;tag=alive",
		"To: <sip:" + proxyAddr + ">",
		"Call-ID: torture-alive-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"CSeq: 1 OPTIONS",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	dst, _ := net.ResolveUDPAddr("udp4", proxyAddr)
	if _, err := pc.WriteTo([]byte(req), dst); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(tortureFinal))
	buf := make([]byte, 65535)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("the proxy no longer answers an OPTIONS: %v", err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		t.Errorf("OPTIONS to the proxy: %q, want 200", line)
	}
}

// tortureExpectNoneInFlight waits for the proxy's metrics to show no
// server transaction in flight: every message got its final answer or was
// ended, none leaked.
func tortureExpectNoneInFlight(t *testing.T, metricsURL string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		res, err := http.Get(metricsURL)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "switchboard_transactions_in_flight ") {
					last = line
					if strings.TrimSpace(strings.TrimPrefix(line, "switchboard_transactions_in_flight ")) == "0" {
						return
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("transactions still in flight after the torture messages: %q", last)
}
