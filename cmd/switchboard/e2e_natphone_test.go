package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// natPhone is a phone on a socket of its own inside a lab host: it writes
// its SIP by hand, so that its Via and Contact say the address it believes
// it has (a private one, behind a NAT), as a real phone's do. It answers the
// proxy's OPTIONS keepalives while answerOptions is set.
type natPhone struct {
	t         *testing.T
	user      string
	domain    string
	transport string // "UDP", "TCP" or "WS"
	local     string // the host:port it puts in Via and Contact
	proxy     string // the proxy's host:port

	write func([]byte) error
	// writeTo sends to addr (host:port) over UDP, as a response to a
	// request's source or a request to its first Route; nil on streams,
	// whose one connection carries everything.
	writeTo func(b []byte, addr string) error
	in      chan sip.Message
	kept    []sip.Message // read, not yet wanted
	done    chan struct{}
	close   func()

	// answerOptions makes it answer out-of-dialog OPTIONS with 200; pings
	// counts those it got, answered those it answered.
	answerOptions   atomic.Bool
	pings, answered atomic.Int32
	cseq            atomic.Uint32
}

// phoneWait is how long a phone waits for a message it expects.
const phoneWait = 10 * time.Second

// newUDPPhone opens a UDP phone of user@domain at local (ip:port) in host.
func newUDPPhone(t *testing.T, lab *netLab, host, local, proxy, user, domain string) *natPhone {
	t.Helper()
	conn := lab.listenUDP(host, local)
	to, err := net.ResolveUDPAddr("udp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	p := newPhone(t, "UDP", local, proxy, user, domain)
	p.write = func(b []byte) error { _, err := conn.WriteToUDP(b, to); return err }
	p.writeTo = func(b []byte, addr string) error {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		_, err = conn.WriteToUDP(b, a)
		return err
	}
	p.close = func() { conn.Close() }
	go func() {
		defer close(p.done)
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...)); err == nil {
				if req, ok := msg.(*sip.Request); ok {
					// Where the answer goes: RFC 3581, the source.
					req.SetSource(from.String())
				}
				p.dispatch(msg)
			}
		}
	}()
	return p
}

// newStreamPhone connects a TCP ("TCP") or WebSocket ("WS") phone from the
// address ip in host to the proxy.
func newStreamPhone(t *testing.T, lab *netLab, host, ip, transport, proxy, user, domain string) *natPhone {
	t.Helper()
	conn, err := lab.dialTCP(host, net.JoinHostPort(ip, "0"), proxy)
	if err != nil {
		t.Fatalf("%s phone %s: connect to %s: %v", transport, user, proxy, err)
	}
	local := conn.LocalAddr().String()
	if transport == "WS" {
		// RFC 7118: a browser knows no address of its own to give.
		local = randomHex(6) + ".invalid"
	}
	p := newPhone(t, transport, local, proxy, user, domain)
	p.close = func() { conn.Close() }
	switch transport {
	case "TCP":
		p.write = func(b []byte) error { _, err := conn.Write(b); return err }
		go p.readStream(conn)
	case "WS":
		d := ws.Dialer{Protocols: []string{"sip"}, NetDial: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		c, _, _, err := d.Dial(context.Background(), "ws://"+proxy+"/")
		if err != nil {
			conn.Close()
			t.Fatalf("WS phone %s: handshake with %s: %v", user, proxy, err)
		}
		var mu sync.Mutex
		p.write = func(b []byte) error {
			mu.Lock()
			defer mu.Unlock()
			return wsutil.WriteClientText(c, b)
		}
		go func() {
			defer close(p.done)
			for {
				data, err := wsutil.ReadServerText(c)
				if err != nil {
					return
				}
				if msg, err := sip.ParseMessage(data); err == nil {
					p.dispatch(msg)
				}
			}
		}()
	default:
		t.Fatalf("newStreamPhone: transport %q", transport)
	}
	return p
}

func newPhone(t *testing.T, transport, local, proxy, user, domain string) *natPhone {
	p := &natPhone{t: t, user: user, domain: domain, transport: transport, local: local, proxy: proxy,
		in: make(chan sip.Message, 256), done: make(chan struct{})}
	p.answerOptions.Store(true)
	t.Cleanup(func() { p.hangUp() })
	return p
}

// hangUp closes the phone's socket or connection.
func (p *natPhone) hangUp() {
	if p.close != nil {
		p.close()
	}
}

// readStream reads SIP messages off a TCP connection, skipping keepalive
// CRLFs.
func (p *natPhone) readStream(conn net.Conn) {
	defer close(p.done)
	parser := sip.NewParser().NewSIPStream()
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		data := buf[:n]
		if strings.TrimLeft(string(data), "\r\n") == "" {
			continue
		}
		if err := parser.ParseSIPStream(data, p.dispatch); err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
			return
		}
	}
}

// dispatch answers keepalive OPTIONS and queues everything else.
func (p *natPhone) dispatch(msg sip.Message) {
	if req, ok := msg.(*sip.Request); ok && req.Method == sip.OPTIONS && req.To() != nil && !req.To().Params.Has("tag") {
		p.pings.Add(1)
		if p.answerOptions.Load() {
			if p.reply(req, p.response(req, 200, "OK", randomHex(4), "")) == nil {
				p.answered.Add(1)
			}
		}
		return
	}
	select {
	case p.in <- msg:
	default:
		p.t.Errorf("phone %s: more than %d messages unread", p.user, cap(p.in))
	}
}

func (p *natPhone) send(text string) error {
	return p.write([]byte(text))
}

// reply sends a response to req: over UDP to where req came from.
func (p *natPhone) reply(req *sip.Request, text string) error {
	if p.writeTo != nil && req.Source() != "" {
		return p.writeTo([]byte(text), req.Source())
	}
	return p.send(text)
}

// sendAlong sends an in-dialog request: over UDP to the first Route when
// it names an address, as a phone's loose routing does.
func (c *natCall) sendAlong(text string) error {
	if c.p.writeTo != nil && len(c.routes) > 0 {
		var u sip.Uri
		if err := sip.ParseUri(strings.Trim(strings.SplitN(c.routes[0], ">", 2)[0], "<"), &u); err == nil && u.Port != 0 {
			return c.p.writeTo([]byte(text), net.JoinHostPort(u.Host, fmt.Sprint(u.Port)))
		}
	}
	return c.p.send(text)
}

// next returns the first message, read or arriving within phoneWait, that
// want accepts, or an error naming what it waited for.
func (p *natPhone) next(what string, want func(sip.Message) bool) (sip.Message, error) {
	for i, m := range p.kept {
		if want(m) {
			p.kept = append(p.kept[:i], p.kept[i+1:]...)
			return m, nil
		}
	}
	timeout := time.After(phoneWait)
	for {
		select {
		case m := <-p.in:
			if want(m) {
				return m, nil
			}
			p.kept = append(p.kept, m)
		case <-timeout:
			return nil, fmt.Errorf("phone %s (%s %s): no %s within %v", p.user, p.transport, p.local, what, phoneWait)
		}
	}
}

// finalResponse waits for the final response to the request of callID and
// cseq (a number and method).
func (p *natPhone) finalResponse(callID, cseq string) (*sip.Response, error) {
	m, err := p.next("final response to "+cseq, func(m sip.Message) bool {
		res, ok := m.(*sip.Response)
		return ok && res.StatusCode >= 200 && res.CallID().Value() == callID && res.CSeq().Value() == cseq
	})
	if err != nil {
		return nil, err
	}
	return m.(*sip.Response), nil
}

// via is a Via header for a new client transaction.
func (p *natPhone) via() string {
	return fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", p.transport, p.local, randomHex(8))
}

// contact is the phone's Contact URI.
func (p *natPhone) contact() string {
	uri := fmt.Sprintf("sip:%s@%s", p.user, p.local)
	if p.transport != "UDP" {
		uri += ";transport=" + strings.ToLower(p.transport)
	}
	return uri
}

// aor is the phone's address-of-record.
func (p *natPhone) aor() string { return fmt.Sprintf("sip:%s@%s", p.user, p.domain) }

// register sends a REGISTER for expires seconds and returns the response.
func (p *natPhone) register(expires int) (*sip.Response, error) {
	callID, cseq := randomHex(10), fmt.Sprintf("%d REGISTER", p.cseq.Add(1))
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n%sMax-Forwards: 70\r\nFrom: <%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: %s\r\nContact: <%s>\r\nExpires: %d\r\nContent-Length: 0\r\n\r\n",
		p.domain, p.via(), p.aor(), randomHex(4), p.aor(), callID, cseq, p.contact(), expires)
	if err := p.send(msg); err != nil {
		return nil, err
	}
	return p.finalResponse(callID, cseq)
}

// mustRegister registers the phone for an hour, failing the test unless it
// gets 200.
func (p *natPhone) mustRegister() {
	p.t.Helper()
	res, err := p.register(3600)
	if err != nil {
		p.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		p.t.Fatalf("phone %s: REGISTER got %d %s", p.user, res.StatusCode, res.Reason)
	}
}

// natCall is a phone's side of a dialog.
type natCall struct {
	p        *natPhone
	callID   string
	local    string // our From or To header value, with our tag
	remote   string // theirs, with their tag
	target   string // their Contact URI
	routes   []string
	cseq     int
	inviteOK *sip.Response // the 200 to our INVITE, for a caller
	invite   *sip.Request  // the INVITE that made the call, for a callee
}

const phoneSDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

// call places a call to user@domain and returns it once answered and
// ACKed, or the final response that was not 2xx as an error.
func (p *natPhone) call(user string) (*natCall, error) {
	c := &natCall{p: p, callID: randomHex(10), cseq: 1,
		local: fmt.Sprintf("<%s>;tag=%s", p.aor(), randomHex(4))}
	to := fmt.Sprintf("<sip:%s@%s>", user, p.domain)
	msg := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\n%sMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		user, p.domain, p.via(), c.local, to, c.callID, p.contact(), len(phoneSDP), phoneSDP)
	if err := p.send(msg); err != nil {
		return nil, err
	}
	res, err := p.finalResponse(c.callID, "1 INVITE")
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 300 {
		return nil, fmt.Errorf("phone %s: INVITE to %s got %d %s", p.user, user, res.StatusCode, res.Reason)
	}
	c.inviteOK = res
	c.remote = res.To().Value()
	c.target = contactURI(res)
	rr := headerValues(res, "Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		c.routes = append(c.routes, rr[i])
	}
	return c, c.sendAlong(c.build("ACK", 1, ""))
}

// answer waits for an INVITE, rings, answers it and waits for its ACK.
func (p *natPhone) answer() (*natCall, error) {
	m, err := p.next("INVITE", func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.Method == sip.INVITE && !req.To().Params.Has("tag")
	})
	if err != nil {
		return nil, err
	}
	req := m.(*sip.Request)
	if req.To().Address.User != p.user {
		return nil, fmt.Errorf("phone %s got a call for %s", p.user, req.To().Address.User)
	}
	tag := randomHex(4)
	c := &natCall{p: p, callID: req.CallID().Value(), remote: req.From().Value(), invite: req,
		local: req.To().Value() + ";tag=" + tag, target: contactURI(req), routes: headerValues(req, "Record-Route")}
	if err := p.reply(req, p.response(req, 180, "Ringing", tag, "")); err != nil {
		return nil, err
	}
	if err := p.reply(req, p.response(req, 200, "OK", tag, phoneSDP)); err != nil {
		return nil, err
	}
	_, err = p.next("ACK", func(m sip.Message) bool {
		ack, ok := m.(*sip.Request)
		return ok && ack.Method == sip.ACK && ack.CallID().Value() == c.callID
	})
	return c, err
}

// build writes an in-dialog request of the call: to their Contact, along
// the route set.
func (c *natCall) build(method string, cseq int, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n%sMax-Forwards: 70\r\n", method, c.target, c.p.via())
	for _, r := range c.routes {
		fmt.Fprintf(&b, "Route: %s\r\n", r)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <%s>\r\n", c.local, c.remote, c.callID, cseq, method, c.p.contact())
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// request sends an in-dialog request (re-INVITE, BYE, ...) and returns its
// final response code; a 2xx to a re-INVITE is ACKed.
func (c *natCall) request(method string) (int, error) {
	c.cseq++
	body := ""
	if method == "INVITE" {
		body = phoneSDP
	}
	if err := c.sendAlong(c.build(method, c.cseq, body)); err != nil {
		return 0, err
	}
	res, err := c.p.finalResponse(c.callID, fmt.Sprintf("%d %s", c.cseq, method))
	if err != nil {
		return 0, err
	}
	if method == "INVITE" && res.StatusCode < 300 {
		if err := c.sendAlong(c.build("ACK", c.cseq, "")); err != nil {
			return 0, err
		}
	}
	return res.StatusCode, nil
}

// expect waits for the other end's in-dialog request method and answers it
// 200 (waiting for the ACK of a re-INVITE). It returns the request.
func (c *natCall) expect(method string) (*sip.Request, error) {
	m, err := c.p.next(method+" of call "+c.callID, func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && string(req.Method) == method && req.CallID().Value() == c.callID
	})
	if err != nil {
		return nil, err
	}
	req := m.(*sip.Request)
	body := ""
	if method == "INVITE" {
		body = phoneSDP
	}
	if err := c.p.reply(req, c.p.response(req, 200, "OK", "", body)); err != nil {
		return nil, err
	}
	if method == "INVITE" {
		_, err = c.p.next("ACK of re-INVITE", func(m sip.Message) bool {
			ack, ok := m.(*sip.Request)
			return ok && ack.Method == sip.ACK && ack.CallID().Value() == c.callID && ack.CSeq().SeqNo == req.CSeq().SeqNo
		})
	}
	return req, err
}

// response writes a response to req, adding tag to its To when it has
// none, and the Record-Route of a dialog-making request.
func (p *natPhone) response(req *sip.Request, code int, reason, tag, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range headerValues(req, "Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	if req.Method == sip.INVITE && !req.To().Params.Has("tag") {
		for _, v := range headerValues(req, "Record-Route") {
			fmt.Fprintf(&b, "Record-Route: %s\r\n", v)
		}
	}
	to := req.To().Value()
	if !req.To().Params.Has("tag") && tag != "" {
		to += ";tag=" + tag
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.From().Value(), to, req.CallID().Value(), req.CSeq().Value())
	if req.Method == sip.INVITE {
		fmt.Fprintf(&b, "Contact: <%s>\r\n", p.contact())
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// headerValues returns the values of every header called name in m, one per
// entry even where the message put several in one line.
func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, splitHeaderList(h.Value())...)
	}
	return out
}

// splitHeaderList splits a comma-separated list of name-addrs, leaving
// commas inside <> and quotes alone.
func splitHeaderList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i, r := range v {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '<':
			depth++
		case r == '>':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// contactURI is the URI of m's Contact.
func contactURI(m sip.Message) string {
	hs := m.GetHeaders("Contact")
	if len(hs) == 0 {
		return ""
	}
	v := hs[0].Value()
	if i, j := strings.Index(v, "<"), strings.Index(v, ">"); i >= 0 && j > i {
		return v[i+1 : j]
	}
	if i := strings.Index(v, ";"); i >= 0 {
		return v[:i]
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
