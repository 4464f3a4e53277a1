package engine

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/certs"
	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
)

// tlsCallee is a SIP server on TLS played by the test: it answers the
// first request on each connection 200 and keeps the name each client
// asked for (SNI).
type tlsCallee struct {
	port string
	sni  chan string
}

// newTLSCallee serves a certificate for name issued by ca.
func newTLSCallee(t *testing.T, ca *certstest.CA, name string) *tlsCallee {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, time.Now().Add(24*time.Hour), name)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := &tlsCallee{sni: make(chan string, 4)}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c.sni <- hello.ServerName
			return nil, nil
		},
	}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, c.port, _ = net.SplitHostPort(ln.Addr().String())
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(coreWait))
				req, err := readStreamRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				res := sip.NewResponseFromRequest(req, 200, "OK", nil)
				res.To().Params.Add("tag", "callee")
				_, _ = conn.Write([]byte(res.String()))
				// Held open until the proxy closes it, or the deadline.
				_, _ = conn.Read(make([]byte, 1))
			}()
		}
	}()
	return c
}

// tlsDialingEngine is a forwarding engine whose TLS client trusts ca only,
// with the stages given in TOML before the forward stage.
func tlsDialingEngine(t *testing.T, ca *certstest.CA, stages string) *Engine {
	t.Helper()
	return forwardingEngineWith(t, tlsDialing(t, ca), stages, "")
}

// tlsDialing returns engine options whose TLS client trusts ca only.
func tlsDialing(t *testing.T, ca *certstest.CA) Options {
	t.Helper()
	dir := t.TempDir()
	cert, key := ca.Issue(t, time.Now().Add(24*time.Hour), tlsName)
	pair := certs.Pair{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	certstest.Write(t, pair.Cert, cert)
	certstest.Write(t, pair.Key, key)
	bundle := filepath.Join(dir, "ca.pem")
	certstest.Write(t, bundle, ca.PEM)
	store, err := certs.New(certs.Options{Pairs: []certs.Pair{pair}, CA: bundle, MinVersion: tls.VersionTLS12, HandshakeTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return Options{Certs: store}
}

// TestOutboundTLS sends branches to TLS servers played by the test: the
// proxy verifies each against the CA bundle and the name of the target's
// URI, sends that name as SNI (none for an IP address), and answers 503
// when the server's certificate does not verify: the branch's 503 goes
// upstream as 500 (best.go, RFC 3261 16.7).
func TestOutboundTLS(t *testing.T) {
	ca, other := certstest.NewCA(t), certstest.NewCA(t)
	tests := []struct {
		name    string
		issuer  *certstest.CA
		certFor string // the name the server's certificate is for
		uri     string // %s is the server's port
		code    int
		sni     string
	}{
		{"name signed by the CA", ca, "localhost", "sip:bob@localhost:%s;transport=tls", 200, "localhost"},
		{"sips scheme", ca, "localhost", "sips:bob@localhost:%s", 200, "localhost"},
		{"another name", ca, "other.test", "sip:bob@localhost:%s;transport=tls", 500, "localhost"},
		{"another CA", other, "localhost", "sip:bob@localhost:%s;transport=tls", 500, "localhost"},
		{"IP address in the certificate", ca, "127.0.0.1", "sip:bob@127.0.0.1:%s;transport=tls", 200, ""},
		{"IP address not in the certificate", ca, "localhost", "sip:bob@127.0.0.1:%s;transport=tls", 500, ""},
	}
	e := tlsDialingEngine(t, ca, "")
	caller := newPeer(t, "127.0.0.2", nil)
	for i, tc := range tests {
		callee := newTLSCallee(t, tc.issuer, tc.certFor)
		uri := fmt.Sprintf(tc.uri, callee.port)
		req := caller.request(sip.OPTIONS, uri, "tls-out-"+strconv.Itoa(i), 1)
		caller.send(e.testAddr("UDP"), req)
		res := caller.response(req, 200, coreWait)
		if res == nil || res.StatusCode != tc.code {
			t.Errorf("test %d (%s): answer %v, want %d", i, tc.name, res, tc.code)
		}
		select {
		case sni := <-callee.sni:
			if sni != tc.sni {
				t.Errorf("test %d (%s): SNI %q, want %q", i, tc.name, sni, tc.sni)
			}
		default:
			t.Errorf("test %d (%s): no handshake reached the server", i, tc.name)
		}
	}
}

// targetsStage forwards a request to the URIs of its X-Targets header.
type targetsStage struct{}

func (targetsStage) ServeRequest(ctx *pipeline.Context) (pipeline.Verdict, error) {
	h := ctx.Request.GetHeader("X-Targets")
	if h == nil {
		return pipeline.Continue, nil
	}
	for _, raw := range strings.Split(h.Value(), ",") {
		var u sip.Uri
		if err := sip.ParseUri(strings.TrimSpace(raw), &u); err != nil {
			return pipeline.Continue, err
		}
		ctx.Targets = append(ctx.Targets, pipeline.Target{URI: u})
	}
	return pipeline.Continue, nil
}

var registerTargets = sync.OnceFunc(func() {
	pipeline.Register(pipeline.StageInfo{Name: "test_targets", Description: "test", New: func() pipeline.Stage { return new(targetsStage) }})
})

// TestOutboundTLSFailover forks a request to a TLS server whose
// certificate is for another name and to one whose certificate verifies:
// the first branch fails, the caller gets the second one's 200.
func TestOutboundTLSFailover(t *testing.T) {
	ca := certstest.NewCA(t)
	registerTargets()
	e := tlsDialingEngine(t, ca, "[[stage]]\nuse = \"test_targets\"")
	bad := newTLSCallee(t, ca, "other.test")
	good := newTLSCallee(t, ca, "localhost")
	caller := newPeer(t, "127.0.0.2", nil)
	req := caller.request(sip.OPTIONS, "sip:bob@example.org", "tls-failover", 1)
	req.AppendHeader(sip.NewHeader("X-Targets", "sip:bob@localhost:"+bad.port+";transport=tls, sip:bob@localhost:"+good.port+";transport=tls"))
	caller.send(e.testAddr("UDP"), req)
	if res := caller.response(req, 200, coreWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("answer %v, want the second branch's 200", res)
	}
}
