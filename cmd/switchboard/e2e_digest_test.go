package main

import (
	"testing"
	"time"
)

// TestSecurityDigestBinding replays, with secure.toml, the two attacks
// that valid credentials made possible: credentials computed for a call
// to bob carrying a call to a gateway (the digest uri was never compared
// with the Request-URI), and alice's password carrying a From of
// carol-ceo. Both must be refused without reaching the gateway, while
// alice calling as herself, and SIPp calling bob with the digest it
// computes, go through.
func TestSecurityDigestBinding(t *testing.T) {
	t.Parallel()
	p := secStartProxy(t, true)
	gateway := secStartPhone(t, secForeignIP)
	gatewayURI := "sip:+19005550100@" + gateway.Addr()
	to := "+19005550100@" + secForeignIP
	alice, password := "alice@"+proxyDomain, secUsers["alice"]

	tests := []struct {
		name    string
		req     secReq
		code    int
		reaches bool
	}{
		{"credentials for a call to bob, on a call to the gateway",
			secReq{Method: "INVITE", URI: gatewayURI, From: alice, To: to, User: "alice", Password: password, DigestURI: "sip:bob@" + proxyDomain}, 400, false},
		{"alice's password with the From of carol-ceo",
			secReq{Method: "INVITE", URI: gatewayURI, From: "carol-ceo@" + proxyDomain, To: to, User: "alice", Password: password}, 403, false},
		{"alice's password, as alice",
			secReq{Method: "INVITE", URI: gatewayURI, From: alice, To: to, User: "alice", Password: password}, 486, true},
	}
	ua := secNewUA(t, callerIP, p.UDP)
	for i, tc := range tests {
		before := len(gateway.received())
		res := ua.do(tc.req)
		time.Sleep(100 * time.Millisecond) // room for a wrongly forwarded request to arrive
		if res.Code() != tc.code {
			t.Errorf("test %d (%s): codes %v, want final %d", i, tc.name, res.Codes, tc.code)
		}
		if got := gateway.received()[before:]; (len(got) > 0) != tc.reaches {
			t.Errorf("test %d (%s): the gateway received %q, want the request: %v", i, tc.name, got, tc.reaches)
		}
	}

	// A real client. SIPp computes its digest over sip:host:port of the
	// proxy unless -auth_uri names the Request-URI (without sip:): its
	// REGISTER (sent to sip:host:port) goes through, its INVITE to bob
	// only with -auth_uri.
	callee := startPhone(t, "uas.xml", callee2IP, "udp")
	secSippRegister(t, p, "bob", callee.IP, callee.Port)
	call := func(extra ...string) *sippRun {
		args := append([]string{p.UDP, "-sf", scenario(t, "auth_uac.xml"), "-i", calleeIP, "-s", "bob",
			"-au", "alice", "-ap", password, "-key", "from_user", "alice", "-key", "domain", proxyDomain}, extra...)
		return runSipp(t, args...)
	}
	plain := call()
	if code := plain.Wait(); code == 0 || len(plain.Received("SIP/2.0 400 Bad Request: digest uri")) != 1 {
		t.Errorf("SIPp without -auth_uri: exit code %d, want a failure on a 400\n%s", code, plain.Report())
	}
	call("-auth_uri", "bob@"+p.UDP).ExpectCalls(1)
	callee.ExpectCalls(1)
}
