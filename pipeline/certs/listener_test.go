package certs

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/certs/certstest"
)

// serveEcho serves ln, echoing what each connection reads; a read that
// fails ends the connection, its error sent on errs.
func serveEcho(ln net.Listener, errs chan<- error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if err != nil {
					errs <- err
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

func TestListener(t *testing.T) {
	ca := certstest.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, ca, cert, key, "127.0.0.1")
	caFile := filepath.Join(dir, "ca.pem")
	certstest.Write(t, caFile, ca.PEM)
	stranger := certstest.NewCA(t)
	goodCert, goodKey := ca.Issue(t, time.Now().Add(time.Hour), "trunk.example.org")
	badCert, badKey := stranger.Issue(t, time.Now().Add(time.Hour), "trunk.example.org")
	good, _ := tls.X509KeyPair(goodCert, goodKey)
	bad, _ := tls.X509KeyPair(badCert, badKey)

	tests := []struct {
		name   string
		auth   tls.ClientAuthType
		client []tls.Certificate
		raw    string // sent on a plain connection instead of a handshake
		silent bool   // connect and send nothing
		echo   bool   // the message comes back
	}{
		{name: "no client certificate asked", echo: true},
		{name: "client certificate verified", auth: tls.RequireAndVerifyClientCert, client: []tls.Certificate{good}, echo: true},
		{name: "client certificate of another CA", auth: tls.RequireAndVerifyClientCert, client: []tls.Certificate{bad}},
		{name: "no client certificate", auth: tls.RequireAndVerifyClientCert},
		{name: "garbage", raw: "OPTIONS sip:x SIP/2.0\r\n\r\n"},
		{name: "binary garbage", raw: "\x16\x03\x01\xff\xff\x00\x00\x00garbage"},
		{name: "silent past the handshake timeout", silent: true},
	}
	for i, tc := range tests {
		log, _ := newLog()
		s, err := New(Options{Pairs: []Pair{{cert, key}}, CA: caFile, ClientAuth: tc.auth, MinVersion: tls.VersionTLS12, HandshakeTimeout: 200 * time.Millisecond}, log)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := s.Listen(raw)
		errs := make(chan error, 4)
		go serveEcho(ln, errs)
		conn, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		switch {
		case tc.raw != "" || tc.silent:
			_, _ = conn.Write([]byte(tc.raw))
			got, _ = io.ReadAll(conn)
		default:
			tc := tls.Client(conn, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: tc.client})
			if _, err := tc.Write([]byte("hello")); err == nil {
				buf := make([]byte, 5)
				if _, err := io.ReadFull(tc, buf); err == nil {
					got = buf
				}
			}
		}
		if tc.echo != (string(got) == "hello") {
			t.Errorf("test %d (%s): read %q", i, tc.name, got)
		}
		if !tc.echo {
			select {
			case err := <-errs:
				if !errors.Is(err, io.EOF) {
					t.Errorf("test %d (%s): the server read %v, want io.EOF", i, tc.name, err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("test %d (%s): the server's connection stayed open", i, tc.name)
			}
		}
		_ = conn.Close()
		_ = ln.Close()
	}
}
