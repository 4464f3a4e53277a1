package main

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// The trunk tests play the provider with SIPp: a trunk that challenges
// calls with 407, and a registrar that challenges with 401 or refuses
// with 403. SIPp checks the proxy's digests itself (verifyauth).

const trunkUser, trunkRealm, trunkPassword = "4021234567", "trunk.test", "secret"

// trunkConfig is a proxy whose calls all go to the trunk at addr, with the
// credentials file it writes, and the stage keys extra.
func trunkConfig(t *testing.T, uri string, extra ...string) string {
	t.Helper()
	sum := md5.Sum([]byte(trunkUser + ":" + trunkRealm + ":" + trunkPassword))
	creds := filepath.Join(t.TempDir(), "trunk.txt")
	if err := os.WriteFile(creds, []byte(trunkUser+":"+trunkRealm+":"+hex.EncodeToString(sum[:])+":-\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`[server]
domains = [%q]
drain_timeout = "5s"

[log]
level = "debug"

[[stage]]
use = "parse"

[[stage]]
use = "record_route"

[[stage]]
use         = "trunk"
uri         = %q
credentials = %q
%s

[[stage]]
use = "forward"
`, proxyDomain, uri, creds, strings.Join(extra, "\n"))
}

// TestTrunkChallenge calls through a trunk that challenges the INVITE
// with 407: the proxy answers it, SIPp finds the digest right, and the
// caller's call (INVITE, ACK, BYE) goes through without it seeing the
// challenge; the trunk checks that the ACK and BYE have their CSeq raised.
func TestTrunkChallenge(t *testing.T) {
	t.Parallel()
	trunk := startPhone(t, "trunk_uas_auth.xml", calleeIP, "udp")
	p := startProxy(t, trunkConfig(t, "sip:"+trunk.Addr()))
	call := callFrom(t, p, "uac.xml", "udp", "-s", "0900123456")
	call.ExpectCalls(1)
	trunk.ExpectCalls(1)
	if got := call.Received("SIP/2.0 407"); len(got) != 0 {
		t.Errorf("the caller saw the challenge: %v", got)
	}
	var invites []sipMessage
	for _, m := range trunk.Messages() {
		if m.Direction == "received" && m.IsRequest("INVITE") {
			invites = append(invites, m)
		}
	}
	if len(invites) != 2 {
		t.Fatalf("the trunk received %d INVITEs, want 2", len(invites))
	}
	uri := strings.Fields(invites[1].FirstLine())[1]
	checkDigest(t, "INVITE", uri, invites[1].Header("Proxy-Authorization"))
}

// checkDigest checks MD5 credentials with qop=auth for the trunk's
// account, as RFC 7616 3.4.1 computes them.
func checkDigest(t *testing.T, method, uri, credentials string) {
	t.Helper()
	p := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]*))`).FindAllStringSubmatch(credentials, -1) {
		p[m[1]] = m[2] + m[3]
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	ha1 := h(trunkUser + ":" + trunkRealm + ":" + trunkPassword)
	want := h(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + h(method+":"+p["uri"]))
	if p["username"] != trunkUser || p["realm"] != trunkRealm || p["uri"] != uri || p["qop"] != "auth" || p["response"] != want {
		t.Errorf("credentials %q: want user %s, realm %s, uri %s, qop auth and response %s", credentials, trunkUser, trunkRealm, uri, want)
	}
}

// TestTrunkRegistration registers the proxy to a SIPp registrar that
// challenges with 401 and grants 2 s: the registration shows in the
// admin API, and is refreshed (SIPp's scenario ends after the refresh's
// 200). A registrar that answers 403 shows as failed, with the reason.
func TestTrunkRegistration(t *testing.T) {
	t.Parallel()
	t.Run("challenged and refreshed", func(t *testing.T) {
		t.Parallel()
		registrar := startPhone(t, "trunk_registrar.xml", calleeIP, "udp", "-key", "auth_user", trunkUser, "-key", "auth_pass", trunkPassword, "-key", "expires", "2")
		p := startProxy(t, trunkConfig(t, "sip:"+registrar.Addr(),
			`register_aor = "sip:`+trunkUser+`@`+trunkRealm+`"`, `register_expires = "1m"`))
		reg := waitOutbound(t, p, func(r pipeline.RegistrationInfo) bool { return r.State == "registered" })
		if left := time.Until(reg.Expires); left <= 0 || left > 2*time.Second {
			t.Errorf("registered until %s (in %s), want the 2 s the registrar granted", reg.Expires, left)
		}
		registrar.ExpectCalls(1) // both rounds: the refresh came
		if out := ctlOK(t, p, "outbound"); !strings.Contains(out, "sip:"+trunkUser+"@"+trunkRealm) {
			t.Errorf("ctl outbound:\n%s", out)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		registrar := startPhone(t, "trunk_registrar_refuse.xml", callee2IP, "udp")
		p := startProxy(t, trunkConfig(t, "sip:"+registrar.Addr(),
			`register_aor = "sip:`+trunkUser+`@`+trunkRealm+`"`, `register_retry = "1m"`))
		reg := waitOutbound(t, p, func(r pipeline.RegistrationInfo) bool { return r.State == "failed" })
		if !strings.Contains(reg.LastError, "403") || reg.Failures != 1 {
			t.Errorf("failed registration %+v, want one failure with the 403", reg)
		}
		registrar.ExpectCalls(1)
	})
}

// waitOutbound polls the admin API (switchboard ctl outbound) until the
// one outbound registration satisfies ok, and returns it.
func waitOutbound(t *testing.T, p *proxy, ok func(pipeline.RegistrationInfo) bool) pipeline.RegistrationInfo {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var regs []pipeline.RegistrationInfo
	for {
		ctlJSON(t, p, &regs, "outbound")
		if len(regs) == 1 && ok(regs[0]) {
			return regs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbound registrations %+v after 15s\n%s", regs, tail(p.log.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
