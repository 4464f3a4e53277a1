package engine

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/certs"
	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
)

// tlsName is the name the test's TLS listener advertises and its
// certificates are for.
const tlsName = "sip.test"

// certbot lays out certificates as certbot does: files in archive/, links
// to them in live/, swapped by rename at each renewal.
type certbot struct {
	t         *testing.T
	ca        *certstest.CA
	dir       string
	renewals  int
	cert, key string // the links
}

func newCertbot(t *testing.T) *certbot {
	dir := t.TempDir()
	for _, d := range []string{"archive", "live"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cb := &certbot{t: t, ca: certstest.NewCA(t), dir: dir, cert: filepath.Join(dir, "live", "cert.pem"), key: filepath.Join(dir, "live", "privkey.pem")}
	cb.renew()
	return cb
}

// renew writes a new pair and swaps the links to it; it returns the new
// certificate's serial number.
func (cb *certbot) renew() string {
	cb.renewals++
	n := strconv.Itoa(cb.renewals)
	c, k := cb.ca.Issue(cb.t, time.Now().Add(24*time.Hour), tlsName, "127.0.0.1")
	certstest.Write(cb.t, filepath.Join(cb.dir, "archive", "cert"+n+".pem"), c)
	certstest.Write(cb.t, filepath.Join(cb.dir, "archive", "privkey"+n+".pem"), k)
	for link, target := range map[string]string{cb.cert: "cert" + n + ".pem", cb.key: "privkey" + n + ".pem"} {
		if err := os.Symlink(filepath.Join("..", "archive", target), link+".new"); err != nil {
			cb.t.Fatal(err)
		}
		if err := os.Rename(link+".new", link); err != nil {
			cb.t.Fatal(err)
		}
	}
	block, _ := pem.Decode(c)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		cb.t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

// certStore returns a store serving cb's live pair.
func certStore(t *testing.T, cb *certbot) *certs.Store {
	t.Helper()
	store, err := certs.New(certs.Options{Pairs: []certs.Pair{{Cert: cb.cert, Key: cb.key}}, MinVersion: tls.VersionTLS12, HandshakeTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// tlsPhone is a phone on a TLS connection to the proxy: it keeps the
// messages it reads, in order.
type tlsPhone struct {
	t    *testing.T
	conn *tls.Conn
	msgs chan sip.Message
}

func dialTLS(t *testing.T, addr string, roots *x509.CertPool) *tlsPhone {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: tlsName})
	if err != nil {
		t.Fatal(err)
	}
	ph := &tlsPhone{t: t, conn: conn, msgs: make(chan sip.Message, 16)}
	t.Cleanup(func() { conn.Close() })
	go ph.read()
	return ph
}

// serial is the serial number of the certificate the proxy presented.
func (ph *tlsPhone) serial() string {
	return ph.conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// read keeps the stream's messages until it ends.
func (ph *tlsPhone) read() {
	defer close(ph.msgs)
	readMessages(ph.conn, func(msg sip.Message) { ph.msgs <- msg })
}

// request sends a request from the phone and returns its final response.
// Its Contact names port 1, where the phone does not listen: as a phone's
// listening port, out of reach through its firewall, it can be reached
// only over its connection.
func (ph *tlsPhone) request(method, ruri, callID string, extra ...string) *sip.Response {
	ph.t.Helper()
	local := ph.conn.LocalAddr().String()
	host, _, _ := net.SplitHostPort(local)
	raw := fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:alice@example.org>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n"+
		"Contact: <sip:alice@%s:1;transport=tls>\r\n", method, ruri, local, sip.GenerateBranch(), callID, ruri, callID, method, host)
	for _, h := range extra {
		raw += h + "\r\n"
	}
	raw += "Content-Length: 0\r\n\r\n"
	if _, err := io.WriteString(ph.conn, raw); err != nil {
		ph.t.Fatal(err)
	}
	deadline := time.After(coreWait)
	for {
		select {
		case msg, ok := <-ph.msgs:
			if !ok {
				ph.t.Fatalf("the TLS connection closed before the answer to %s", method)
			}
			if res, ok := msg.(*sip.Response); ok && res.CallID().Value() == callID && res.StatusCode >= 200 {
				return res
			}
		case <-deadline:
			ph.t.Fatalf("no final answer to %s over TLS", method)
		}
	}
}

// reply answers req with code over the phone's connection.
func (ph *tlsPhone) reply(req *sip.Request, code int) {
	res := sip.NewResponseFromRequest(req, code, reasonOf(code), nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", "tag-alice")
	}
	if _, err := io.WriteString(ph.conn, res.String()); err != nil {
		ph.t.Fatal(err)
	}
}

// TestTLS runs a phone on TLS through the proxy: it registers, calls a
// phone on UDP, and, after the certificate is renewed by a link swap
// while its connection is up, calls again over the same connection while
// a new connection sees the new certificate. Garbage on the TLS port
// closes that connection and nothing else.
func TestTLS(t *testing.T) {
	cb := newCertbot(t)
	store := certStore(t, cb)
	stop := make(chan struct{})
	defer close(stop)
	if err := store.Watch(stop); err != nil {
		t.Fatal(err)
	}
	c := newCoreWith(t, productChain, Options{Certs: store})
	addr := c.e.testAddr("TLS")
	bob := newPhone(t, "bob", answering(nil, 200))
	c.register(bob, "bob")

	alice := dialTLS(t, addr, cb.ca.Pool())
	first := alice.serial()
	if res := alice.request("REGISTER", "sip:alice@example.org", "reg-alice", "Expires: 300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER over TLS answered %d", res.StatusCode)
	}
	if res := alice.request("INVITE", "sip:bob@example.org", "call-1"); res.StatusCode != 200 {
		t.Fatalf("INVITE over TLS answered %d", res.StatusCode)
	}
	inv, _ := bob.waitRequest(sip.INVITE, "call-1", 1)
	var routes []string
	for _, h := range inv.GetHeaders("Record-Route") {
		routes = append(routes, h.Value())
	}
	if len(routes) != 2 || !strings.Contains(routes[1], "sip:"+tlsName+":") || !strings.Contains(routes[1], "transport=tls") || !strings.Contains(routes[0], "transport=udp") {
		t.Errorf("Record-Route = %q, want the UDP entry over the TLS one, advertised as %s", routes, tlsName)
	}

	garbage, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = garbage.SetDeadline(time.Now().Add(coreWait))
	_, _ = garbage.Write([]byte("INVITE sip:bob@example.org SIP/2.0\r\n\r\n\x00\xff garbage"))
	if n, _ := io.Copy(io.Discard, garbage); n != 0 {
		t.Errorf("garbage on the TLS port read %d bytes back", n)
	}
	garbage.Close()

	second := cb.renew()
	poll(t, "a new connection sees the renewed certificate", func() bool {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: cb.ca.Pool(), ServerName: tlsName})
		if err != nil {
			return false
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String() == second
	})
	if second == first {
		t.Fatal("the renewal kept the serial number")
	}
	if res := alice.request("INVITE", "sip:bob@example.org", "call-2"); res.StatusCode != 200 {
		t.Fatalf("INVITE over the connection made before the renewal answered %d", res.StatusCode)
	}
	if alice.serial() != first {
		t.Errorf("the connection up during the renewal changed certificate")
	}
}
