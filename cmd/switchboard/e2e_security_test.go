package main

// End-to-end tests of the protections of docs/security.md: the proxy runs
// examples/secure.toml (its domain and users replaced by the test's), and
// is attacked on loopback with SIPVicious (Debian package sipvicious: svmap,
// svwar, svcrack), with SIPp phones that know or guess the passwords, and
// with requests written here (secUA) that try to relay through it. Nothing
// leaves loopback: the destinations of every request are 127.0.0.x.
//
// Addresses: the proxy is on 127.0.0.1, attackers on 127.0.0.2, our users'
// phones on 127.0.0.3 and 127.0.0.4, a server of another domain on
// 127.0.0.5. svwar and svcrack 0.3.3 ignore their -b option (their main()
// never passes it on) and send from an unbound socket, which the kernel
// gives the source 127.0.0.1, the proxy's own address: the tests that run
// them do so in a network namespace of their own (secInNetns), where the
// loopback route to 127.0.0.1 prefers the source 127.0.0.2.

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const (
	// secForeignIP is a server of another domain.
	secForeignIP = "127.0.0.5"
	// secToolTimeout bounds every SIPVicious run.
	secToolTimeout = 90 * time.Second
	// secWait bounds the wait for a final response to a secUA request.
	secWait = 5 * time.Second
	// secQuiet is how long a banned source is watched for an answer.
	secQuiet = 1500 * time.Millisecond
)

// secUsers are the users of the test's users file and their passwords:
// strong ones, and a weak one that is in every password dictionary.
var secUsers = map[string]string{
	"alice": "k7#Vq9!pLm2$Zx8w-alice",
	"bob":   "Qz4%hT8@wN1^rB6e-bob",
	"200":   "123456",
	"101":   "e9!Lr4$Tq0#Wm7zX-101",
	"103":   "u2@Nc8^Kd5&Pj3vB-103",
	"105":   "h6*Fy1!Gs9%Rt4qM-105",
}

// requireSipvicious fails the test when SIPVicious is missing, or skips it
// when SWITCHBOARD_E2E_OPTIONAL=1.
func requireSipvicious(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"svmap", "svwar", "svcrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("SWITCHBOARD_E2E_OPTIONAL") == "1" {
				t.Skipf("%s is not installed (Debian package sipvicious); skipping because SWITCHBOARD_E2E_OPTIONAL=1", tool)
			}
			t.Fatalf("%s is not installed: the security tests need SIPVicious (Debian: apt-get install sipvicious); "+
				"set SWITCHBOARD_E2E_OPTIONAL=1 to skip them instead", tool)
		}
	}
}

// secInNetns runs the calling test again in a network namespace of its own
// (unshare -n) with loopback up and 127.0.0.2 as the preferred source of
// packets to 127.0.0.1, and returns false: the caller returns at once. In
// the namespace it returns true and the test goes on.
func secInNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SWITCHBOARD_SEC_NETNS") == "1" {
		c, err := net.Dial("udp4", net.JoinHostPort(proxyIP, "9"))
		if err != nil {
			t.Fatal(err)
		}
		src := c.LocalAddr().(*net.UDPAddr).IP.String()
		c.Close()
		if src != callerIP {
			t.Fatalf("packets to %s leave from %s, want %s: SWITCHBOARD_SEC_NETNS is set outside the namespace secInNetns makes", proxyIP, src, callerIP)
		}
		return true
	}
	t.Parallel()
	requireE2E(t)
	requireSipvicious(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is not installed: this test needs it to run in a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is not installed: this test needs it to set up loopback in a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	script := "ip link set lo up && ip route change local " + proxyIP + " dev lo proto kernel scope host src " + callerIP + ` table local && exec "$0" "$@"`
	cmd := exec.CommandContext(ctx, unshare, "-n", "sh", "-c", script, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_SEC_NETNS=1", "SWITCHBOARD_BIN="+switchboardBin)
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace (unshare -n, source %s toward %s):\n%s", callerIP, proxyIP, out)
	if err != nil {
		t.Fatalf("the test in the network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("the test in the network namespace did not run")
	}
	return false
}

// secWriteUsers writes the users file of secUsers for the realm and
// returns its path.
func secWriteUsers(t *testing.T) string {
	t.Helper()
	hexsum := func(h hash.Hash, s string) string {
		h.Write([]byte(s))
		return hex.EncodeToString(h.Sum(nil))
	}
	var b strings.Builder
	names := make([]string, 0, len(secUsers))
	for u := range secUsers {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		a1 := u + ":" + proxyDomain + ":" + secUsers[u]
		fmt.Fprintf(&b, "%s:%s:%s:%s\n", u, proxyDomain, hexsum(md5.New(), a1), hexsum(sha256.New(), a1))
	}
	path := filepath.Join(t.TempDir(), "users.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// secConfig returns examples/secure.toml for the test: the domain (and
// realm, and the rules' domain) example.org becomes sip.test, the users
// file is the test's, and, with md5Only, the auth stage offers MD5 alone:
// SIPp 3.6 and svcrack 0.3.3 read only the first challenge, and compute MD5
// digests only (svcrack crashes on a SHA-256 challenge). extra lines go
// into [server].
func secConfig(t *testing.T, md5Only bool, extra ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "secure.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(data), "example.org", proxyDomain)
	users := `users = "secure-users.txt"`
	if !strings.Contains(cfg, users) {
		t.Fatalf("examples/secure.toml has no %s", users)
	}
	cfg = strings.Replace(cfg, users, "users = "+strconv.Quote(secWriteUsers(t)), 1)
	if md5Only {
		realm := "realm = " + strconv.Quote(proxyDomain)
		cfg = strings.Replace(cfg, realm, realm+"\nalgorithms = [\"MD5\"]", 1)
	}
	server := "[server]\n"
	cfg = strings.Replace(cfg, server, server+strings.Join(append(extra, `drain_timeout = "5s"`), "\n")+"\n", 1)
	return cfg
}

// secStartProxy starts a proxy with secConfig.
func secStartProxy(t *testing.T, md5Only bool, extra ...string) *proxy {
	t.Helper()
	return startProxy(t, secConfig(t, md5Only, extra...))
}

// secRun runs a SIPVicious tool, bounded by secToolTimeout, and returns
// what it printed.
func secRun(t *testing.T, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), secToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = t.TempDir()
	// The tools keep sessions under ~/.sipvicious: keep them out of the
	// real home.
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v\n%s", tool, strings.Join(args, " "), secToolTimeout, out)
	}
	if err != nil {
		t.Logf("%s %s: %v", tool, strings.Join(args, " "), err)
	}
	t.Logf("%s %s:\n%s", tool, strings.Join(args, " "), out)
	return string(out)
}

// secLocalPort returns a -P option for a SIPVicious run: a free UDP port on
// the attacker's address (the tools take 5060, or the next free one, by
// default, which races with the other tests' phones).
func secLocalPort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(freePort(t, "udp", callerIP))
}

// secTableRow is a row of the result table SIPVicious prints.
var secTableRow = regexp.MustCompile(`(?m)^\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|`)

// secTable returns the rows of the result table of a SIPVicious run, first
// column to second, without the header row.
func secTable(out string) map[string]string {
	rows := map[string]string{}
	for i, m := range secTableRow.FindAllStringSubmatch(out, -1) {
		if i == 0 {
			continue // the header
		}
		rows[m[1]] = m[2]
	}
	return rows
}

func secKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// secPort returns the port of a host:port.
func secPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// secPhone is a phone (or a server of another domain) written here: it
// answers INVITE with 486 and any other request but ACK with 200, and
// records what it receives.
type secPhone struct {
	IP   string
	Port int

	pc   net.PacketConn
	mu   sync.Mutex
	got  []*sip.Request
	done chan struct{}
}

func secStartPhone(t *testing.T, ip string) *secPhone {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ph := &secPhone{IP: ip, Port: pc.LocalAddr().(*net.UDPAddr).Port, pc: pc, done: make(chan struct{})}
	go func() {
		defer close(ph.done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if req := tortureAnswer(pc, from, slices.Clone(buf[:n])); req != nil {
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

// Addr is the phone's host:port.
func (ph *secPhone) Addr() string { return net.JoinHostPort(ph.IP, strconv.Itoa(ph.Port)) }

// received returns the methods of the requests the phone received.
func (ph *secPhone) received() []string {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	var out []string
	for _, r := range ph.got {
		out = append(out, string(r.Method))
	}
	return out
}

// secUA is a user agent written here, over UDP, for requests SIPp cannot
// make easily: any From, To tag and Route, and digest credentials for a
// challenge with SHA-256 or MD5.
type secUA struct {
	t     *testing.T
	pc    *net.UDPConn
	proxy *net.UDPAddr
	local string
}

func secNewUA(t *testing.T, ip, proxyAddr string) *secUA {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dst, err := net.ResolveUDPAddr("udp4", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	return &secUA{t: t, pc: pc, proxy: dst, local: pc.LocalAddr().String()}
}

// secReq is a request for secUA.
type secReq struct {
	Method string
	URI    string
	// From and To are user@host.
	From, To string
	// ToTag, when set, makes the request look in-dialog.
	ToTag string
	// Route, when set, is a Route header value.
	Route string
	// Contact, when set, is the Contact URI; NoContact leaves the header
	// out (a REGISTER that only asks for the bindings).
	Contact   string
	NoContact bool
	// User and Password answer one challenge (401 or 407), if set.
	User, Password string
	// Expires, when set, is a REGISTER's Expires (3600 otherwise).
	Expires string
	// DigestURI, when set, is the credentials' uri in place of URI.
	DigestURI string
}

// secResult is what came back for a secReq.
type secResult struct {
	// Final is the last final response, nil when none came.
	Final *sip.Response
	// Codes are every status code received, in order.
	Codes []int
}

// Code is the final status code, or 0.
func (r secResult) Code() int {
	if r.Final == nil {
		return 0
	}
	return r.Final.StatusCode
}

func secRandom() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// build writes the request with CSeq cseq, and an authorization header
// (name: value) if any.
func (u *secUA) build(r secReq, callID, fromTag string, cseq int, branch, auth string) string {
	fromUser, _, _ := strings.Cut(r.From, "@")
	lines := []string{
		r.Method + " " + r.URI + " SIP/2.0",
		"Via: SIP/2.0/UDP " + u.local + ";branch=" + branch + ";rport",
		"Max-Forwards: 70",
		"From: <sip:" + r.From + ">;tag=" + fromTag,
	}
	to := "To: <sip:" + r.To + ">"
	if r.ToTag != "" {
		to += ";tag=" + r.ToTag
	}
	lines = append(lines, to, "Call-ID: "+callID, fmt.Sprintf("CSeq: %d %s", cseq, r.Method))
	contact := r.Contact
	if contact == "" {
		contact = "sip:" + fromUser + "@" + u.local
	}
	if !r.NoContact {
		lines = append(lines, "Contact: <"+contact+">")
	}
	if r.Route != "" {
		lines = append(lines, "Route: "+r.Route)
	}
	if r.Method == "REGISTER" {
		lines = append(lines, "Expires: "+cmp.Or(r.Expires, "3600"))
	}
	if auth != "" {
		lines = append(lines, auth)
	}
	return strings.Join(append(lines, "Content-Length: 0", "", ""), "\r\n")
}

// do sends the request and waits for its final response (secWait at
// most), answering one 401 or 407 with the credentials of r, if any. A
// non-2xx final response to an INVITE is acknowledged.
func (u *secUA) do(r secReq) secResult {
	u.t.Helper()
	var res secResult
	callID, fromTag := "sec-"+secRandom(), secRandom()
	auth := ""
	for cseq := 1; cseq <= 2; cseq++ {
		branch := "z9hG4bK-sec-" + secRandom()
		req := u.build(r, callID, fromTag, cseq, branch, auth)
		if _, err := u.pc.WriteTo([]byte(req), u.proxy); err != nil {
			u.t.Fatal(err)
		}
		final := u.final(callID, cseq, &res)
		if final == nil {
			return res
		}
		res.Final = final
		if r.Method == "INVITE" && final.StatusCode >= 300 {
			ack := u.build(secReq{Method: "ACK", URI: r.URI, From: r.From, To: r.To, ToTag: secToTag(final), Route: r.Route}, callID, fromTag, cseq, branch, "")
			_, _ = u.pc.WriteTo([]byte(ack), u.proxy)
		}
		if (final.StatusCode != 401 && final.StatusCode != 407) || r.User == "" || auth != "" {
			return res
		}
		name, header := "Authorization", "WWW-Authenticate"
		if final.StatusCode == 407 {
			name, header = "Proxy-Authorization", "Proxy-Authenticate"
		}
		ch := final.GetHeader(header)
		if ch == nil {
			u.t.Fatalf("a %d without %s:\n%s", final.StatusCode, header, final)
		}
		uri := r.URI
		if r.DigestURI != "" {
			uri = r.DigestURI
		}
		auth = name + ": " + secDigest(ch.Value(), r.Method, uri, r.User, r.Password)
	}
	return res
}

// final reads responses to the request (callID, cseq) until a final one,
// recording their codes; nil when none came within secWait.
func (u *secUA) final(callID string, cseq int, res *secResult) *sip.Response {
	deadline := time.Now().Add(secWait)
	buf := make([]byte, 65535)
	for {
		_ = u.pc.SetReadDeadline(deadline)
		n, _, err := u.pc.ReadFrom(buf)
		if err != nil {
			return nil
		}
		msg, err := sip.ParseMessage(slices.Clone(buf[:n]))
		if err != nil {
			continue
		}
		m, ok := msg.(*sip.Response)
		if !ok || m.CallID() == nil || m.CallID().Value() != callID || m.CSeq() == nil || int(m.CSeq().SeqNo) != cseq {
			continue
		}
		res.Codes = append(res.Codes, m.StatusCode)
		if m.StatusCode >= 200 {
			return m
		}
	}
}

// silent sends the request and reports whether nothing at all came back
// within secQuiet.
func (u *secUA) silent(r secReq) bool {
	u.t.Helper()
	callID := "sec-" + secRandom()
	req := u.build(r, callID, secRandom(), 1, "z9hG4bK-sec-"+secRandom(), "")
	if _, err := u.pc.WriteTo([]byte(req), u.proxy); err != nil {
		u.t.Fatal(err)
	}
	_ = u.pc.SetReadDeadline(time.Now().Add(secQuiet))
	buf := make([]byte, 65535)
	_, _, err := u.pc.ReadFrom(buf)
	return err != nil
}

func secToTag(res *sip.Response) string {
	if to := res.To(); to != nil {
		tag, _ := to.Params.Get("tag")
		return tag
	}
	return ""
}

var secChallengeParam = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^\s,]+))`)

// secDigest answers a Digest challenge (MD5 or SHA-256, qop=auth) for
// method and uri (RFC 7616 3.4.1).
func secDigest(challenge, method, uri, user, password string) string {
	params := map[string]string{}
	for _, m := range secChallengeParam.FindAllStringSubmatch(challenge, -1) {
		params[strings.ToLower(m[1])] = m[2] + m[3]
	}
	alg := params["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	sum := func(s string) string {
		var h hash.Hash = md5.New()
		if strings.EqualFold(alg, "SHA-256") {
			h = sha256.New()
		}
		h.Write([]byte(s))
		return hex.EncodeToString(h.Sum(nil))
	}
	realm, nonce, cnonce, nc := params["realm"], params["nonce"], secRandom(), "00000001"
	response := sum(sum(user+":"+realm+":"+password) + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + sum(method+":"+uri))
	return fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, response=%q, algorithm=%s, qop=auth, nc=%s, cnonce=%q`,
		user, realm, nonce, uri, response, alg, nc, cnonce)
}

// secRegister registers user (with its password from secUsers) for the
// phone ph, from the phone's address; it fails the test unless the answer
// is 200.
func secRegister(t *testing.T, p *proxy, user string, ph *secPhone) {
	t.Helper()
	ua := secNewUA(t, ph.IP, p.UDP)
	res := ua.do(secReq{
		Method: "REGISTER", URI: "sip:" + proxyDomain, From: user + "@" + proxyDomain, To: user + "@" + proxyDomain,
		Contact: "sip:" + user + "@" + ph.Addr(), User: user, Password: secUsers[user],
	})
	if res.Code() != 200 {
		t.Fatalf("registering %s: codes %v, want 401 then 200", user, res.Codes)
	}
}

// secSippRegister registers user with SIPp (auth_register.xml) from ip, for
// a phone at ip:contactPort.
func secSippRegister(t *testing.T, p *proxy, user, ip string, contactPort int) {
	t.Helper()
	runSipp(t, p.UDP, "-sf", scenario(t, "auth_register.xml"), "-i", ip, "-s", user,
		"-au", user, "-ap", secUsers[user], "-key", "domain", proxyDomain,
		"-key", "contact_port", strconv.Itoa(contactPort)).ExpectCalls(1)
	if t.Failed() {
		t.FailNow()
	}
}

// TestSecuritySvmap: svmap finds the proxy (a SIP server answers OPTIONS;
// no config hides that), and the proxy keeps working.
func TestSecuritySvmap(t *testing.T) {
	if !secInNetns(t) {
		return
	}
	p := secStartProxy(t, false)
	out := secRun(t, "svmap", "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", secPort(t, p.UDP), proxyIP)
	found := secTable(out)
	if _, ok := found[p.UDP]; !ok {
		t.Errorf("svmap did not find the proxy at %s: %q", p.UDP, found)
	}
	runSipp(t, p.UDP, "-sf", scenario(t, "options.xml"), "-i", calleeIP).ExpectCalls(1)
}

// TestSecuritySvwarWithoutAuth: without the auth stage, svwar finds the
// registered extensions. An OPTIONS scan tells them apart: an unknown
// extension gets 404, a registered one reaches its phone, which answers.
// A REGISTER scan finds nothing, for the worst of reasons: an open
// registrar accepts every REGISTER, so svwar registers every extension it
// tries (the query afterwards lists svwar's binding).
func TestSecuritySvwarWithoutAuth(t *testing.T) {
	if !secInNetns(t) {
		return
	}
	p := startProxy(t, testConfig())
	ph := secStartPhone(t, calleeIP)
	registered := []string{"101", "103", "105"}
	for _, user := range registered {
		registerUser(t, p.UDP, user, ph.IP, ph.Port, "udp")
	}

	out := secRun(t, "svwar", "-m", "OPTIONS", "-e100-110", "--domain", proxyDomain, "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", secPort(t, p.UDP), proxyIP)
	found := secTable(out)
	if got := secKeys(found); !slices.Equal(got, registered) {
		t.Errorf("svwar -m OPTIONS found %q, want the registered extensions %q", got, registered)
	}
	for ext, how := range found {
		if how != "noauth" {
			t.Errorf("svwar: extension %s: %q, want noauth", ext, how)
		}
	}

	out = secRun(t, "svwar", "-e200-204", "--domain", proxyDomain, "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", secPort(t, p.UDP), proxyIP)
	if found := secTable(out); len(found) != 0 {
		t.Errorf("svwar (REGISTER) found %q against an open registrar, want nothing (every REGISTER gets 200)", secKeys(found))
	}
	ua := secNewUA(t, callee2IP, p.UDP)
	res := ua.do(secReq{Method: "REGISTER", URI: "sip:" + proxyDomain, From: "202@" + proxyDomain, To: "202@" + proxyDomain, NoContact: true})
	if res.Code() != 200 || !strings.Contains(res.Final.String(), "sip:202@"+proxyDomain) {
		t.Errorf("after the REGISTER scan, 202 is not bound to svwar's Contact sip:202@%s: %v\n%v", proxyDomain, res.Codes, res.Final)
	}
}

// TestSecuritySvwarWithAuth: with secure.toml, svwar finds no extension:
// REGISTER and requests from our domain are challenged whether the user
// exists or not, so svwar gives up at its first probe (it sees a challenge
// for an extension that cannot exist). Forced on, it finds nothing either:
// every extension, registered or not, gets the same 401 as the made-up one
// it starts with.
func TestSecuritySvwarWithAuth(t *testing.T) {
	if !secInNetns(t) {
		return
	}
	p := secStartProxy(t, false)
	ph := secStartPhone(t, calleeIP)
	for _, user := range []string{"101", "103", "105"} {
		secRegister(t, p, user, ph)
	}
	port := secPort(t, p.UDP)
	for _, method := range []string{"REGISTER", "OPTIONS", "INVITE"} {
		out := secRun(t, "svwar", "-m", method, "-e100-110", "--domain", proxyDomain, "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", port, proxyIP)
		if found := secTable(out); len(found) != 0 {
			t.Errorf("svwar -m %s found %q, want nothing", method, secKeys(found))
		}
	}
	out := secRun(t, "svwar", "--force", "-e100-110", "--domain", proxyDomain, "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", port, proxyIP)
	if found := secTable(out); len(found) != 0 {
		t.Errorf("svwar --force found %q, want nothing", secKeys(found))
	}
	if len(ph.received()) != 0 {
		t.Errorf("the phone of the registered extensions received %q from the scans", ph.received())
	}
}

// TestSecuritySvcrackBanned: svcrack finds the weak password of user 200
// (it is the third in its dictionary) and not alice's strong one; the
// failures ban its address, 127.0.0.2, whose packets are then dropped,
// while alice's phone on 127.0.0.3 keeps registering and calling bob on
// 127.0.0.4 with SIPp and the right credentials.
func TestSecuritySvcrackBanned(t *testing.T) {
	if !secInNetns(t) {
		return
	}
	p := secStartProxy(t, true)
	port := secPort(t, p.UDP)
	dir := t.TempDir()
	weak := filepath.Join(dir, "weak.txt")
	strong := filepath.Join(dir, "strong.txt")
	if err := os.WriteFile(weak, []byte("password\nadmin\n123456\n1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	words := []string{"password", "123456", "12345678", "qwerty", "abc123", "letmein", "monkey", "1234567", "dragon", "111111",
		"baseball", "iloveyou", "trustno1", "sunshine", "master", "welcome", "shadow", "ashley", "football", "secret"}
	if err := os.WriteFile(strong, []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := secRun(t, "svcrack", "-u", "200", "-d", weak, "--domain", proxyDomain, "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", port, "--maximumtime", "3", proxyIP)
	if got := secTable(out)["200"]; got != secUsers["200"] {
		t.Errorf("svcrack did not find the weak password of 200: table %q", secTable(out))
	}
	out = secRun(t, "svcrack", "-u", "alice", "-d", strong, "--domain", proxyDomain, "-b", callerIP, "-x", callerIP, "-P", secLocalPort(t), "-p", port, "--maximumtime", "3", proxyIP)
	if found := secTable(out); len(found) != 0 {
		t.Errorf("svcrack found %q for alice, want nothing", found)
	}
	if !strings.Contains(out, "since we last received a response") {
		t.Errorf("svcrack did not report the proxy going silent (the ban)")
	}

	// The attacker's address is banned: even a fresh OPTIONS gets nothing.
	attacker := secNewUA(t, callerIP, p.UDP)
	if !attacker.silent(secReq{Method: "OPTIONS", URI: "sip:" + p.UDP, From: "scanner@evil.test", To: p.UDP}) {
		t.Errorf("%s is not banned: its OPTIONS got an answer", callerIP)
	}

	// Alice and bob, elsewhere, go on.
	callee := startPhone(t, "uas.xml", callee2IP, "udp")
	secSippRegister(t, p, "bob", callee.IP, callee.Port)
	secSippRegister(t, p, "alice", calleeIP, freePort(t, "udp", calleeIP))
	caller := runSipp(t, p.UDP, "-sf", scenario(t, "auth_uac.xml"), "-i", calleeIP, "-s", "bob",
		"-au", "alice", "-ap", secUsers["alice"], "-key", "from_user", "alice", "-key", "domain", proxyDomain,
		"-auth_uri", "bob@"+p.UDP)
	caller.ExpectCalls(1)
	callee.ExpectCalls(1)
	if invites := callee.Received("INVITE "); len(invites) > 0 && invites[0].Header("Proxy-Authorization") != "" {
		t.Errorf("the INVITE reached bob with alice's credentials: %q", invites[0].Header("Proxy-Authorization"))
	}
	if !attacker.silent(secReq{Method: "OPTIONS", URI: "sip:" + p.UDP, From: "scanner@evil.test", To: p.UDP}) {
		t.Errorf("%s is no longer banned", callerIP)
	}
}

// TestSecuritySippCredentials: SIPp phones register with the right
// password (200), a wrong one (401 again: a fresh challenge, not stale),
// and valid credentials for another user's address (403).
func TestSecuritySippCredentials(t *testing.T) {
	t.Parallel()
	p := secStartProxy(t, true)
	port := freePort(t, "udp", calleeIP)
	secSippRegister(t, p, "alice", calleeIP, port)

	tests := []struct {
		name     string
		aor, au  string
		password string
		want     string
	}{
		{"wrong password", "alice", "alice", "not-her-password", "SIP/2.0 401"},
		{"unknown user", "mallory", "mallory", "whatever", "SIP/2.0 401"},
		{"another user's address", "bob", "alice", secUsers["alice"], "SIP/2.0 403"},
	}
	for _, tc := range tests {
		r := runSipp(t, p.UDP, "-sf", scenario(t, "auth_register_refused.xml"), "-i", callee2IP, "-s", tc.aor,
			"-au", tc.au, "-ap", tc.password, "-key", "domain", proxyDomain, "-key", "contact_port", strconv.Itoa(port))
		r.ExpectCalls(1)
		finals := r.Received("SIP/2.0 4")
		if len(finals) != 2 || !strings.HasPrefix(finals[1].FirstLine(), tc.want) {
			var got []string
			for _, m := range finals {
				got = append(got, m.FirstLine())
			}
			t.Errorf("%s: answers %q, want 401 then %s\n%s", tc.name, got, tc.want, r.Report())
			continue
		}
		if strings.Contains(finals[1].Header("WWW-Authenticate"), "stale") {
			t.Errorf("%s: the second challenge says stale: %q", tc.name, finals[1].Header("WWW-Authenticate"))
		}
	}
}

// TestSecurityRelayPolicy sends, with secure.toml, the requests that make
// or break an open relay. A server of another domain listens on 127.0.0.5.
func TestSecurityRelayPolicy(t *testing.T) {
	t.Parallel()
	p := secStartProxy(t, false)
	alicePhone := secStartPhone(t, calleeIP)
	secRegister(t, p, "alice", alicePhone)
	// bob registers and unregisters: the store knows him, with no binding.
	secRegister(t, p, "bob", alicePhone)
	bob := "bob@" + proxyDomain
	gone := secNewUA(t, alicePhone.IP, p.UDP).do(secReq{Method: "REGISTER", URI: "sip:" + proxyDomain, From: bob, To: bob,
		Contact: "sip:bob@" + alicePhone.Addr(), Expires: "0", User: "bob", Password: secUsers["bob"]})
	if gone.Code() != 200 {
		t.Fatalf("unregistering bob: codes %v, want 401 then 200", gone.Codes)
	}
	foreign := secStartPhone(t, secForeignIP)
	foreignURI := "sip:carol@" + foreign.Addr()
	alice, mallory := "alice@"+proxyDomain, "mallory@evil.test"

	tests := []struct {
		name string
		req  secReq
		// code is the final response; reaches the phone that must get
		// the request, if any.
		code    int
		reaches *secPhone
	}{
		{"a call from another domain to our user needs no password",
			secReq{Method: "INVITE", URI: "sip:" + alice, From: mallory, To: alice}, 486, alicePhone},
		{"a call from another domain to an unknown user of ours: 480 (hide_unknown)",
			secReq{Method: "INVITE", URI: "sip:nobody@" + proxyDomain, From: mallory, To: "nobody@" + proxyDomain}, 480, nil},
		{"a call from another domain to a user who unregistered: the same 480",
			secReq{Method: "INVITE", URI: "sip:" + bob, From: mallory, To: bob}, 480, nil},
		{"a call from another domain to a user who never registered: the same 480",
			secReq{Method: "INVITE", URI: "sip:101@" + proxyDomain, From: mallory, To: "101@" + proxyDomain}, 480, nil},
		{"our user calls an unknown user of ours: 404",
			secReq{Method: "INVITE", URI: "sip:nobody@" + proxyDomain, From: alice, To: "nobody@" + proxyDomain, User: "alice", Password: secUsers["alice"]}, 404, nil},
		{"our user calls a user who unregistered: 480",
			secReq{Method: "INVITE", URI: "sip:" + bob, From: alice, To: bob, User: "alice", Password: secUsers["alice"]}, 480, nil},
		{"a call from another domain to another domain is refused",
			secReq{Method: "INVITE", URI: foreignURI, From: mallory, To: "carol@" + secForeignIP}, 403, nil},
		{"a MESSAGE likewise",
			secReq{Method: "MESSAGE", URI: foreignURI, From: mallory, To: "carol@" + secForeignIP}, 403, nil},
		{"a preloaded Route to another host is refused",
			secReq{Method: "INVITE", URI: "sip:" + alice, From: mallory, To: alice, Route: "<sip:" + foreign.Addr() + ";lr>"}, 403, nil},
		{"a From in our domain needs the password, even to our domain",
			secReq{Method: "INVITE", URI: "sip:" + alice, From: "bob@" + proxyDomain, To: alice}, 407, nil},
		{"a From in our domain needs the password to go out",
			secReq{Method: "INVITE", URI: foreignURI, From: alice, To: "carol@" + secForeignIP}, 407, nil},
		{"a wrong password gets a new challenge",
			secReq{Method: "INVITE", URI: foreignURI, From: alice, To: "carol@" + secForeignIP, User: "alice", Password: "guess"}, 407, nil},
		{"our user with her password calls out",
			secReq{Method: "INVITE", URI: foreignURI, From: alice, To: "carol@" + secForeignIP, User: "alice", Password: secUsers["alice"]}, 486, foreign},
		{"an in-dialog request without our Route is refused",
			secReq{Method: "INVITE", URI: foreignURI, From: mallory, To: "carol@" + secForeignIP, ToTag: "forged"}, 404, nil},
		{"a REGISTER is challenged, even for another domain",
			secReq{Method: "REGISTER", URI: "sip:" + foreign.Addr(), From: mallory, To: mallory, Contact: "sip:mallory@" + callerIP}, 401, nil},
	}
	ua := secNewUA(t, callerIP, p.UDP)
	for i, tc := range tests {
		before := map[*secPhone]int{alicePhone: len(alicePhone.received()), foreign: len(foreign.received())}
		res := ua.do(tc.req)
		time.Sleep(100 * time.Millisecond) // room for a wrongly forwarded request to arrive
		if res.Code() != tc.code {
			t.Errorf("test %d (%s): codes %v, want final %d", i, tc.name, res.Codes, tc.code)
		}
		for ph, n := range before {
			got := len(ph.received()) - n
			switch {
			case ph == tc.reaches && got == 0:
				t.Errorf("test %d (%s): %s received nothing, want the request", i, tc.name, ph.Addr())
			case ph != tc.reaches && got > 0:
				t.Errorf("test %d (%s): %s received %q, want nothing", i, tc.name, ph.Addr(), ph.received()[n:])
			}
		}
	}
}

// TestSecurityForgedInDialogRelay: a request with a To tag (in-dialog, so
// no password is asked) and a Route naming the proxy, copied into a forged
// request, must not make the proxy a relay. The proxy signs the
// Record-Routes it writes (Call-ID and caller's tag), and the location
// stage lets an in-dialog request through only with a signed Route of ours.
func TestSecurityForgedInDialogRelay(t *testing.T) {
	t.Parallel()
	p := secStartProxy(t, false)
	foreign := secStartPhone(t, secForeignIP)
	ua := secNewUA(t, callerIP, p.UDP)
	res := ua.do(secReq{Method: "INVITE", URI: "sip:+19005550100@" + foreign.Addr(), From: "mallory@evil.test",
		To: "+19005550100@" + secForeignIP, ToTag: "forged", Route: "<sip:" + p.UDP + ";lr>"})
	// Give a relayed INVITE time to arrive, should the proxy relay it.
	time.Sleep(300 * time.Millisecond)
	got := foreign.received()
	if res.Code() != 404 || slices.Contains(got, "INVITE") {
		t.Errorf("the forged in-dialog INVITE: codes %v, the foreign server received %q; want 404 and nothing relayed "+
			"(our Route carries no dialog signature for this Call-ID)", res.Codes, got)
	}
}

// TestSecurityMaxTransactions: with server.max_transactions = 2, two calls
// ringing (two INVITE transactions in flight) fill it, and a third call is
// refused with 503 and Retry-After, without reaching the callee. The
// callee's REGISTER must have ended first: an answered transaction counts
// while sipgo keeps it (50 ms, switchboard_transactions_lingering), not
// while the engine's table of completed transactions absorbs its
// retransmissions for the rest of the linger.
func TestSecurityMaxTransactions(t *testing.T) {
	t.Parallel()
	httpAddr := net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	cfg := strings.Replace(testConfig(), "[server]\n", "[server]\nmax_transactions = 2\nlinger = \"30s\"\n", 1) +
		fmt.Sprintf("\n[http]\nlisten = %q\n", httpAddr)
	p := startProxy(t, cfg)
	callee := startPhone(t, "uas_ring.xml", calleeIP, "udp", "-m", "2")
	registerPhone(t, p, "bob", callee)
	api := "http://" + httpAddr
	held := func() (string, string) {
		return secGauge(t, api, "switchboard_transactions_in_flight"), secGauge(t, api, "switchboard_transactions_lingering")
	}
	deadline := time.Now().Add(10 * time.Second)
	for inFlight, lingering := held(); inFlight != "0" || lingering != "0"; inFlight, lingering = held() {
		if time.Now().After(deadline) {
			t.Fatalf("the REGISTER's transaction is still held: %s in flight, %s lingering", inFlight, lingering)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// They ring for 3 s, then hang up (CANCEL, 487).
	first := callFrom(t, p, "uac_cancel.xml", "udp", "-s", "bob", "-d", "3000")
	second := callFrom(t, p, "uac_cancel.xml", "udp", "-s", "bob", "-d", "3000")
	deadline = time.Now().Add(10 * time.Second)
	for len(callee.Received("INVITE ")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the callee got %d INVITEs, want 2 ringing\n%s", len(callee.Received("INVITE ")), callee.Report())
		}
		time.Sleep(20 * time.Millisecond)
	}
	third := runSipp(t, p.UDP, "-sf", scenario(t, "uac_reject.xml"), "-i", callee2IP, "-s", "bob", "-key", "reject_code", "503")
	third.ExpectCalls(1)
	if res := third.Received("SIP/2.0 503"); len(res) == 0 || res[0].Header("Retry-After") == "" {
		t.Errorf("the 503 has no Retry-After\n%s", third.Report())
	} else {
		t.Logf("third call: %s, Retry-After: %s", res[0].FirstLine(), res[0].Header("Retry-After"))
	}
	first.ExpectCalls(1)
	second.ExpectCalls(1)
	callee.ExpectCalls(2)
	if n := len(callee.Received("INVITE ")); n != 2 {
		t.Errorf("the callee received %d INVITEs, want 2: the third must not reach it", n)
	}
}

// secGauge returns the value of the gauge name on api's /metrics, "" when
// the page cannot be read or lacks it.
func secGauge(t *testing.T, api, name string) string {
	t.Helper()
	res, err := http.Get(api + "/metrics")
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	page, err := io.ReadAll(res.Body)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(page)) {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return value
		}
	}
	return ""
}

// TestSecurityMessageSize: a request larger than [server]
// max_message_size (65535 bytes by default, the most sipgo's parser reads;
// a UDP datagram carries at most 65507) gets 513 Message Too Large,
// unparsed: over UDP at once, over TCP as soon as its header section
// declares a Content-Length past the limit, and the connection is then
// closed. A datagram of the largest size, and one with thousands of
// headers (there is no header count limit but the size), are answered. The
// proxy answers as before afterwards.
func TestSecurityMessageSize(t *testing.T) {
	t.Parallel()
	p := startProxy(t, testConfig())
	small := startProxy(t, strings.Replace(testConfig(), "[server]\n", "[server]\nmax_message_size = 16384\n", 1))
	options := func(target, local string, extra []string, body string) string {
		lines := []string{
			"OPTIONS sip:" + target + " SIP/2.0",
			"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-sec-" + secRandom() + ";rport",
			"Max-Forwards: 70",
			"From: <sip:monitor@" + local + ">;tag=" + secRandom(),
			"To: <sip:" + target + ">",
			"Call-ID: sec-" + secRandom(),
			"CSeq: 1 OPTIONS",
		}
		lines = append(lines, extra...)
		if body != "" {
			lines = append(lines, "Content-Type: text/plain")
		}
		lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)), "", body)
		return strings.Join(lines, "\r\n")
	}
	manyHeaders := func(n int) []string {
		var headers []string
		for i := range n {
			headers = append(headers, fmt.Sprintf("X-Header-%d: %d", i, i))
		}
		return headers
	}
	toUser := func(msg string) string { return strings.Replace(msg, "OPTIONS sip:", "OPTIONS sip:nobody@", 1) }
	// sized returns an OPTIONS to target of exactly n bytes.
	sized := func(target, local string, n int) string {
		around := len(options(target, local, nil, strings.Repeat("x", 10000))) - 10000
		msg := options(target, local, nil, strings.Repeat("x", n-around))
		if len(msg) != n {
			t.Fatalf("the OPTIONS is %d bytes, want %d", len(msg), n)
		}
		return msg
	}
	// udp sends the message write makes for the local address of a fresh
	// socket to target, and returns the first line of the answer, "" for
	// none.
	udp := func(target, what string, write func(local string) string) string {
		t.Helper()
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(callerIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		msg := write(pc.LocalAddr().String())
		dst, _ := net.ResolveUDPAddr("udp4", target)
		if _, err := pc.WriteTo([]byte(msg), dst); err != nil {
			t.Fatalf("%s: send %d bytes: %v", what, len(msg), err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(secWait))
		buf := make([]byte, 65535)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return ""
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		t.Logf("%s (%d bytes over UDP): %s", what, len(msg), line)
		return line
	}

	tests := []struct {
		what   string
		target string
		write  func(local string) string
		want   string
	}{
		{"the largest datagram", p.UDP, func(local string) string { return sized(p.UDP, local, 65507) }, "SIP/2.0 200 "},
		// To a user, so that the request goes through the stages (the proxy
		// answers an OPTIONS to itself before them): the parse stage counts
		// the header fields, the location stage knows no such user.
		{"200 extra headers", p.UDP, func(local string) string { return toUser(options(p.UDP, local, manyHeaders(200), "")) }, "SIP/2.0 404 "},
		{"3000 headers", p.UDP, func(local string) string { return toUser(options(p.UDP, local, manyHeaders(3000), "")) },
			"SIP/2.0 400 Bad Request: more than 256 header fields"},
		{"at max_message_size", small.UDP, func(local string) string { return sized(small.UDP, local, 16384) }, "SIP/2.0 200 "},
		{"past max_message_size", small.UDP, func(local string) string { return sized(small.UDP, local, 16385) },
			"SIP/2.0 513 Message Too Large: 16385 bytes, at most 16384"},
	}
	for i, tc := range tests {
		if got := udp(tc.target, tc.what, tc.write); !strings.HasPrefix(got, tc.want) {
			t.Errorf("test %d (%s): %q, want %q", i, tc.what, got, tc.want)
		}
	}

	// Over TCP, 70000 bytes: past sipgo's 65535 the stream is closed,
	// unanswered (a TCP read is not a message: the proxy cannot tell a
	// request line from the middle of a body, so it answers no 513 there).
	conn, err := net.Dial("tcp4", p.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	big := strings.Replace(options(p.TCP, local, nil, strings.Repeat("x", 70000)), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := conn.Write([]byte(big)); err != nil {
		t.Logf("writing %d bytes over TCP: %v", len(big), err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(secWait))
	answer, err := io.ReadAll(conn)
	if len(answer) != 0 {
		t.Errorf("a %d-byte OPTIONS over TCP was answered: %q", len(big), answer)
	}
	// Closed with the rest of the body unread, the connection may end
	// with a reset rather than EOF.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the connection was not closed: %v", err)
	}

	// Still alive, on both transports.
	runSipp(t, p.UDP, "-sf", scenario(t, "options.xml"), "-i", calleeIP).ExpectCalls(1)
	runSipp(t, p.TCP, "-sf", scenario(t, "options.xml"), "-i", calleeIP, "-t", "t1").ExpectCalls(1)
}
