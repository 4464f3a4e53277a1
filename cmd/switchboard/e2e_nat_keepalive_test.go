package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/stun"
)

// natUA is a phone on a raw UDP socket of 127.0.0.1 that registers a
// Contact at a private address, as a phone behind NAT does; it answers
// OPTIONS 200 while answer is set, and keeps what it reads.
type natUA struct {
	t      *testing.T
	conn   *net.UDPConn
	mu     sync.Mutex
	answer bool
	got    []string
	from   []string
}

func newNATUA(t *testing.T, answer bool) *natUA {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(proxyIP)})
	if err != nil {
		t.Fatal(err)
	}
	ua := &natUA{t: t, conn: conn, answer: answer}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			ua.mu.Lock()
			ua.got = append(ua.got, msg)
			ua.from = append(ua.from, from.String())
			answer := ua.answer
			ua.mu.Unlock()
			if answer && strings.HasPrefix(msg, "OPTIONS ") {
				_, _ = conn.WriteToUDP([]byte(okTo(msg)), from)
			}
		}
	}()
	return ua
}

// okTo is a 200 to the request msg: its Via, From, To, Call-ID and CSeq.
func okTo(msg string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, line := range strings.Split(msg, "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "from", "call-id", "cseq":
			b.WriteString(line + "\r\n")
		case "to":
			b.WriteString(line + ";tag=ua\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// send writes msg to the proxy's UDP socket.
func (ua *natUA) send(p *proxy, msg string) {
	ua.t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", p.UDP)
	if err != nil {
		ua.t.Fatal(err)
	}
	if _, err := ua.conn.WriteToUDP([]byte(msg), dst); err != nil {
		ua.t.Fatal(err)
	}
}

// wait waits for the n-th message that starts with prefix and returns it
// and where it came from.
func (ua *natUA) wait(what, prefix string, n int) (string, string) {
	ua.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ua.mu.Lock()
		seen := 0
		for i, m := range ua.got {
			if strings.HasPrefix(m, prefix) {
				if seen++; seen == n {
					msg, from := m, ua.from[i]
					ua.mu.Unlock()
					return msg, from
				}
			}
		}
		ua.mu.Unlock()
		if time.Now().After(deadline) {
			ua.t.Fatalf("no %s (%d messages read)", what, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// register binds user to a Contact at the private address contact.
func (ua *natUA) register(p *proxy, user, contact string) string {
	ua.t.Helper()
	local := ua.conn.LocalAddr().String()
	ua.send(p, strings.Join([]string{
		"REGISTER sip:" + proxyDomain + " SIP/2.0",
		"Via: SIP/2.0/UDP " + contact + ";rport;branch=z9hG4bK-reg-" + user,
		"Max-Forwards: 70",
		"From: <sip:" + user + "@" + proxyDomain + ">;tag=reg",
		"To: <sip:" + user + "@" + proxyDomain + ">",
		"Call-ID: nat-reg-" + user + "-" + local,
		"CSeq: 1 REGISTER",
		"Contact: <sip:" + user + "@" + contact + ">",
		"Expires: 300",
		"Content-Length: 0",
		"", "",
	}, "\r\n"))
	res, _ := ua.wait("200 to the REGISTER", "SIP/2.0 ", 1)
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		ua.t.Fatalf("REGISTER of %s: %s", user, res)
	}
	return res
}

// adminGet reads an admin API path as JSON into v.
func adminGet(t *testing.T, httpAddr, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
	req.Header.Set("Authorization", "Bearer e2e-token-0123456789abcdef")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, res.StatusCode, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
	}
}

// natConfig is the test config with short keepalives and the admin API.
func natConfig(t *testing.T) (cfg, httpAddr string) {
	httpAddr = net.JoinHostPort(proxyIP, strconv.Itoa(freePort(t, "tcp", proxyIP)))
	cfg = strings.Replace(testConfig(), "use = \"registrar\"\n", "use = \"registrar\"\nkeepalive = \"300ms\"\nkeepalive_timeout = \"1500ms\"\n", 1)
	return cfg + fmt.Sprintf("\n[http]\nlisten = %q\ntoken = \"e2e-token-0123456789abcdef\"\n", httpAddr), httpAddr
}

// TestNATKeepalive registers two phones behind NAT (their Contact names a
// private address, their REGISTER comes from 127.0.0.1): the one that
// answers gets OPTIONS pings from the proxy's SIP socket and keeps its
// binding; the silent one is removed, logged, counted and listed by the
// admin API.
func TestNATKeepalive(t *testing.T) {
	cfg, httpAddr := natConfig(t)
	p := startProxy(t, cfg)
	answering := newNATUA(t, true)
	silent := newNATUA(t, false)
	answering.register(p, "natted", "10.0.0.5:5060")
	silent.register(p, "silent", "10.0.0.6:5060")

	ping, from := answering.wait("a second ping", "OPTIONS ", 2)
	if from != p.UDP {
		t.Errorf("ping from %s, want the proxy's SIP socket %s", from, p.UDP)
	}
	if !strings.HasPrefix(ping, "OPTIONS sip:natted@10.0.0.5:5060 SIP/2.0") || !strings.Contains(ping, "User-Agent: ") {
		t.Errorf("ping:\n%s", ping)
	}
	if !p.logSays("binding removed: keepalives unanswered", 10*time.Second) || !strings.Contains(p.log.String(), `stage="stage 2 (registrar)"`) {
		t.Fatalf("no removal logged with its stage:\n%s", tail(p.log.String(), 3000))
	}
	var view struct {
		Pinged []struct {
			AOR        string    `json:"aor"`
			LastAnswer time.Time `json:"last_answer"`
		} `json:"pinged"`
		Removed []struct {
			AOR        string `json:"aor"`
			Unanswered int    `json:"unanswered"`
		} `json:"removed"`
	}
	adminGet(t, httpAddr, "/admin/keepalives", &view)
	if len(view.Pinged) != 1 || view.Pinged[0].AOR != "natted" || view.Pinged[0].LastAnswer.IsZero() {
		t.Errorf("pinged %+v, want natted, answered", view.Pinged)
	}
	if len(view.Removed) != 1 || view.Removed[0].AOR != "silent" || view.Removed[0].Unanswered < 2 {
		t.Errorf("removed %+v, want silent after two pings or more", view.Removed)
	}
	var regs []struct {
		AOR string `json:"aor"`
	}
	adminGet(t, httpAddr, "/admin/registrations", &regs)
	if len(regs) != 1 || regs[0].AOR != "natted" {
		t.Errorf("registrations %+v, want natted's only", regs)
	}
	res, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(metrics), `switchboard_keepalives_total{event="removed"} 1`) {
		t.Errorf("metrics lack the removal:\n%s", metrics)
	}
}

// TestNATSTUN sends a STUN Binding request to the proxy's SIP UDP port
// and checks the success response's XOR-MAPPED-ADDRESS: the sender's own
// address.
func TestNATSTUN(t *testing.T) {
	p := startProxy(t, testConfig())
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(proxyIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, _ := net.ResolveUDPAddr("udp4", p.UDP)
	id := [12]byte{'s', 'w', 'i', 't', 'c', 'h', 'b', 'o', 'a', 'r', 'd', '!'}
	if _, err := conn.WriteToUDP(stun.NewBindingRequest(id, true), dst); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	res, err := stun.Parse(buf[:n])
	if err != nil || res.Type != stun.BindingSuccess || res.TransactionID != id {
		t.Fatalf("answer %x: %+v %v", buf[:n], res, err)
	}
	want := netip.MustParseAddrPort(conn.LocalAddr().String())
	if got, ok := res.XORMappedAddress(); !ok || got != want {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, want)
	}
}

// TestNATOutbound registers a phone over TCP with +sip.instance and
// reg-id (RFC 5626): the 200 says Require: outbound; once its connection
// is gone, a request for it gets 430 Flow Failed.
func TestNATOutbound(t *testing.T) {
	p := startProxy(t, testConfig())
	c, err := net.Dial("tcp4", p.TCP)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().String()
	_, err = c.Write([]byte(strings.Join([]string{
		"REGISTER sip:" + proxyDomain + " SIP/2.0",
		"Via: SIP/2.0/TCP " + local + ";branch=z9hG4bK-ob-1",
		"Max-Forwards: 70",
		"From: <sip:flow@" + proxyDomain + ">;tag=reg",
		"To: <sip:flow@" + proxyDomain + ">",
		"Call-ID: ob-reg",
		"CSeq: 1 REGISTER",
		"Supported: outbound, path",
		`Contact: <sip:flow@` + local + `;transport=tcp;ob>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000000000017>";reg-id=1`,
		"Expires: 300",
		"Content-Length: 0",
		"", "",
	}, "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	var res strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the 200: %v (%q)", err, res.String())
		}
		if line == "\r\n" {
			break
		}
		res.WriteString(line)
	}
	if !strings.HasPrefix(res.String(), "SIP/2.0 200") || !strings.Contains(res.String(), "Require: outbound\r\n") || !strings.Contains(res.String(), "reg-id=1") {
		t.Fatalf("answer to the outbound REGISTER:\n%s", res.String())
	}
	c.Close()

	caller := newNATUA(t, false)
	msg := strings.Join([]string{
		"MESSAGE sip:flow@" + proxyDomain + " SIP/2.0",
		"Via: SIP/2.0/UDP " + caller.conn.LocalAddr().String() + ";branch=z9hG4bK-ob-m1",
		"Max-Forwards: 70",
		"From: <sip:caller@" + proxyDomain + ">;tag=m",
		"To: <sip:flow@" + proxyDomain + ">",
		"Call-ID: ob-message-1",
		"CSeq: 1 MESSAGE",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	// Whether the proxy has seen the close yet or not (the MESSAGE may
	// be written to the connection as it closes), the answer is 430, at
	// once: well before Timer F.
	caller.send(p, msg)
	if got, _ := caller.wait("the answer to the MESSAGE", "SIP/2.0 ", 1); !strings.HasPrefix(got, "SIP/2.0 430 Flow Failed") {
		t.Fatalf("MESSAGE to a dead flow answered:\n%s", got)
	}
}
