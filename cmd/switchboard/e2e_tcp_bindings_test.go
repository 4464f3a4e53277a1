package main

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSecurityTCPSharedBindings is a connection the bindings of two AORs
// live on (a phone with two lines, an SBC): when one de-registers, the
// other's binding must still keep the connection open past idle_timeout.
// Before, the de-registration took the protection away from both.
func TestSecurityTCPSharedBindings(t *testing.T) {
	cfg := strings.Replace(testConfig(), "[server]\n", "[server]\nheader_timeout = \"2s\"\nidle_timeout = \"2s\"\n", 1)
	p := startProxy(t, cfg)
	c, err := net.Dial("tcp4", p.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	register := func(user, expires, cseq string) {
		msg := strings.Join([]string{
			"REGISTER sip:" + proxyDomain + " SIP/2.0",
			"Via: SIP/2.0/TCP " + c.LocalAddr().String() + ";branch=z9hG4bK-" + user + cseq,
			"Max-Forwards: 70",
			"From: <sip:" + user + "@" + proxyDomain + ">;tag=reg",
			"To: <sip:" + user + "@" + proxyDomain + ">",
			"Call-ID: tcp-reg-" + user,
			"CSeq: " + cseq + " REGISTER",
			"Contact: <sip:" + user + "@" + c.LocalAddr().String() + ";transport=tcp>",
			"Expires: " + expires,
			"Content-Length: 0",
			"", "",
		}, "\r\n")
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
			t.Fatalf("REGISTER %s expires %s: %q %v", user, expires, line, err)
		}
		for { // the rest of the response
			if l, err := r.ReadString('\n'); err != nil || l == "\r\n" {
				break
			}
		}
	}
	register("alice", "600", "1")
	register("bob", "600", "1")
	register("bob", "0", "2")
	// A message after the de-registration, so that the guard's next read
	// sees it; then three idle timeouts, which the connection must outlive.
	if _, err := c.Write([]byte(tcpRequest("OPTIONS", p.TCP, c.LocalAddr().String(), "", ""))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
	for err == nil {
		_, err = r.ReadByte()
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("alice's connection closed although her binding lives: %v", err)
	}
}
