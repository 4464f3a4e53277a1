package engine

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// dialTCPPhone connects a phone named name to the proxy's TCP listener:
// a wsPhone without frames, its Contact on a .invalid host.
func dialTCPPhone(t *testing.T, addr, name string) *wsPhone {
	t.Helper()
	conn, err := reuseDialer.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &wsPhone{t: t, name: name, conn: conn, host: name + "-df7jal23ls0d.invalid", transport: "TCP", closed: make(chan struct{})}
	t.Cleanup(func() { conn.Close(); <-p.closed })
	go p.read()
	return p
}

// reuseDialer connects phones from sockets with SO_REUSEADDR, so that
// listenAt can listen on the address once they closed it (the phone's
// side of the closed connection waits in TIME_WAIT).
var reuseDialer = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
	if err != nil {
		return err
	}
	return serr
}}

// readTCP reads the messages of a TCP phone's connection by their
// Content-Length.
func (p *wsPhone) readTCP() {
	r := bufio.NewReader(p.conn)
	for {
		var head bytes.Buffer
		length := 0
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			head.Write(line)
			if bytes.Equal(line, []byte("\r\n")) {
				break
			}
			if v, ok := strings.CutPrefix(strings.ToLower(string(line)), "content-length:"); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		p.received(append(head.Bytes(), body...))
	}
}

// listenAt listens on addr, the address of a phone's closed connection,
// to catch the proxy dialing it. The port was an ephemeral one: a socket
// of a test running beside this one may have taken it since, and then
// nil is returned (logged) once the wait is over, as nothing can listen
// there to catch a dial.
func listenAt(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(coreWait)
	for {
		ln, err := net.Listen("tcp4", addr)
		if err == nil {
			t.Cleanup(func() { ln.Close() })
			return ln
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Logf("%v: another socket holds the phone's old port; no dial to it can be caught", err)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noDial checks that nothing connected to ln: it connects once itself,
// and the first connection ln accepts must be that one (a listener's
// backlog is first in, first out).
func noDial(t *testing.T, ln net.Listener) {
	t.Helper()
	own, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != own.LocalAddr().String() {
		t.Errorf("the proxy connected to %s, the address of a closed flow", ln.Addr())
	}
}

// TestFlows registers a phone over TCP and one over WebSocket, both with
// a .invalid Contact, and reaches each over its connection: a MESSAGE
// through its binding, and the BYE of a call it made to a UDP phone
// through the flow token of the proxy's Record-Route. Once the phone
// closed its connection, a request for it gets 480 and the proxy
// connects to nothing.
func TestFlows(t *testing.T) {
	tests := []struct {
		listen string
		dial   func(t *testing.T, c *core) *wsPhone
	}{
		{"tcp://127.0.0.1:0", func(t *testing.T, c *core) *wsPhone { return dialTCPPhone(t, c.e.testAddr("TCP"), "alice") }},
		{"ws://127.0.0.1:0/sip", func(t *testing.T, c *core) *wsPhone { return dialWS(t, c.e.testAddr("WS"), "alice") }},
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			c := newCoreOn(t, wsSections, productChain, Options{}, tc.listen)
			bob := newPhone(t, "bob", answering(nil, 180, 200))
			c.register(bob, "bob")
			alice := tc.dial(t, c)
			flow := alice.conn.LocalAddr().String()

			reg := alice.build(sip.REGISTER, "sip:example.org", "sip:alice@example.org", "flow-reg", "Expires: 300")
			alice.send(reg)
			// The response goes back over the request's connection (RFC 3261 18.2.2).
			alice.wait("200 to the REGISTER", "SIP/2.0 200", "CSeq: 1 REGISTER")

			alice.send(alice.build(sip.INVITE, "sip:bob@example.org", "sip:bob@example.org", "flow-call"))
			inv, _ := bob.waitRequest(sip.INVITE, "flow-call", 1)
			rr := inv.GetHeaders("Record-Route")
			if len(rr) != 2 || !strings.Contains(rr[0].Value(), "transport=udp") || !strings.Contains(rr[1].Value(), "transport="+strings.ToLower(alice.transport)) {
				t.Fatalf("Record-Route %v, want one for UDP above one for the phone's transport (RFC 5658)", rr)
			}
			u := rr[1].(*sip.RecordRouteHeader).Address
			value, _ := u.UriParams.Get(pipeline.FlowParam)
			flows := pipeline.ParseFlowToken(c.e.svc.DialogKey, "flow-call", value)
			if len(flows) != 1 || flows[0].Addr.String() != flow || flows[0].Transport != alice.transport {
				t.Errorf("Record-Route %s names flows %v, want %s %s", u.String(), flows, alice.transport, flow)
			}
			alice.wait("200 to the INVITE", "SIP/2.0 200", "CSeq: 1 INVITE")
			bye := bob.calleeRequest(sip.BYE, inv, 2)
			bob.send(c.addr, bye)
			alice.wait("the BYE", "BYE sip:alice@"+alice.host)
			if res := bob.waitResponse(bye, 200); res.StatusCode != 200 {
				t.Errorf("BYE answered %d", res.StatusCode)
			}

			msg := bob.build(sip.MESSAGE, "sip:alice@example.org", "sip:alice@example.org", "flow-message", 1)
			bob.send(c.addr, msg)
			alice.wait("the MESSAGE", "MESSAGE sip:alice@"+alice.host)
			if res := bob.waitResponse(msg, 200); res.StatusCode != 200 {
				t.Errorf("MESSAGE answered %d", res.StatusCode)
			}

			alice.conn.Close()
			poll(t, "the connection released", func() bool { return c.e.guard.Open() == 0 })
			ln := listenAt(t, flow)
			gone := bob.build(sip.MESSAGE, "sip:alice@example.org", "sip:alice@example.org", "flow-gone", 1)
			bob.send(c.addr, gone)
			if res := bob.waitResponse(gone, 300); res.StatusCode != 480 {
				t.Errorf("MESSAGE to a closed flow answered %d %s, want 480", res.StatusCode, res.Reason)
			}
			if ln != nil {
				noDial(t, ln)
			}
			c.idle(t)
		})
	}
}

// TestFlowToken checks that a flow token names its flows for its Call-ID
// only, under its key only.
func TestFlowToken(t *testing.T) {
	key := []byte("0123456789abcdef")
	ws := pipeline.Flow{Transport: "WS", Addr: netip.MustParseAddrPort("192.0.2.7:53211")}
	tcp := pipeline.Flow{Transport: "TCP", Addr: netip.MustParseAddrPort("[2001:db8::1]:5060")}
	both := pipeline.FlowToken(key, "call", ws, tcp)
	tests := []struct {
		key    []byte
		callID string
		value  string
		want   []pipeline.Flow
	}{
		{key, "call", pipeline.FlowToken(key, "call", ws), []pipeline.Flow{ws}},
		{key, "call", both, []pipeline.Flow{ws, tcp}},
		{key, "other", both, nil},
		{[]byte("another key"), "call", both, nil},
		{key, "call", "V1MvMTkyLjAuMi43OjE.forged", nil},
		{key, "call", "", nil},
	}
	for i, tc := range tests {
		got := pipeline.ParseFlowToken(tc.key, tc.callID, tc.value)
		if len(got) != len(tc.want) {
			t.Errorf("test %d: %v, want %v", i, got, tc.want)
			continue
		}
		for j := range got {
			if got[j] != tc.want[j] {
				t.Errorf("test %d: %v, want %v", i, got, tc.want)
			}
		}
	}
}
