package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDialplanNationalToE164 calls 0903123456, a national number: the
// dialplan stage makes it +421903123456 and sends it to the gateway (a
// SIPp server) by rewriting the Request-URI's host and port, and the
// gateway receives it so.
func TestDialplanNationalToE164(t *testing.T) {
	t.Parallel()
	gateway := startPhone(t, "uas.xml", calleeIP, "udp")
	p := startProxy(t, fmt.Sprintf(`[server]
domains = [%q]
drain_timeout = "5s"

[[stage]]
use = "parse"

[[stage]]
use  = "dialplan"
when = '!in_dialog'

[[stage.rule]]
match    = '^0([1-9][0-9]+)$'
replace  = '+421$1'
continue = true

[[stage.rule]]
when     = 'request.uri.user startsWith "+421"'
part     = "host"
match    = '.*'
replace  = %q
continue = true

[[stage.rule]]
when    = 'request.uri.user startsWith "+421"'
part    = "port"
match   = '.*'
replace = "%d"

[[stage]]
use = "record_route"

[[stage]]
use = "forward"
`, proxyDomain, gateway.IP, gateway.Port))

	callFrom(t, p, "uac.xml", "udp", "-s", "0903123456").ExpectCalls(1)
	gateway.ExpectCalls(1)
	want := fmt.Sprintf("INVITE sip:+421903123456@%s:%d SIP/2.0", gateway.IP, gateway.Port)
	invites := gateway.Received("INVITE ")
	if len(invites) == 0 || invites[0].FirstLine() != want {
		t.Errorf("the gateway did not receive %q\n%s", want, gateway.Report())
	}
}

// TestDIDReachesRegisteredUser calls +421212345678 from a trunk: the did
// stage maps the number to alice, and the location stage finds her phone.
// An edit to the DID file alone, mapping the number to a user who has not
// registered, applies to the next call without a reload of the config.
func TestDIDReachesRegisteredUser(t *testing.T) {
	t.Parallel()
	dids := filepath.Join(t.TempDir(), "dids.csv")
	if err := os.WriteFile(dids, []byte("number,user\n+421212345678,alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, fmt.Sprintf(`[server]
domains = [%q]
drain_timeout = "5s"

[log]
level = "debug"

[[stage]]
use = "parse"

[[stage]]
use  = "registrar"
when = 'request.method == "REGISTER"'

[[stage]]
use  = "did"
when = '!in_dialog && source.ip == %q'
file = %q

[[stage]]
use = "location"

[[stage]]
use = "record_route"

[[stage]]
use = "forward"
`, proxyDomain, callerIP, dids))
	phone := startPhone(t, "uas.xml", calleeIP, "udp")
	registerPhone(t, p, "alice", phone)

	callFrom(t, p, "uac.xml", "udp", "-s", "+421212345678").ExpectCalls(1)
	phone.ExpectCalls(1)
	invites := phone.Received("INVITE ")
	if len(invites) == 0 || !strings.HasPrefix(invites[0].FirstLine(), "INVITE sip:alice@") {
		t.Fatalf("alice's phone did not receive the call\n%s", phone.Report())
	}
	if to := invites[0].Header("To"); !strings.Contains(to, "+421212345678") {
		t.Errorf("the To header lost the number dialled: %q", to)
	}

	// The number moves to bob, who has no phone registered: 404.
	if err := os.WriteFile(dids, []byte("number,user\n+421212345678,bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !p.logSays("outcome=applied", 5*time.Second) {
		t.Fatalf("the edit of the DID file was not applied:\n%s", tail(p.log.String(), 20))
	}
	callFrom(t, p, "uac_404.xml", "udp", "-s", "+421212345678").ExpectCalls(1)
}

// TestValidateDialplanMistakes runs `switchboard validate` on configs with
// the dial plan's mistakes: each is named by file, stage and key, and a
// table file that does not parse by its file and line.
func TestValidateDialplanMistakes(t *testing.T) {
	if buildErr != nil {
		t.Fatalf("the switchboard binary did not build: %v", buildErr)
	}
	dir := t.TempDir()
	files := map[string]string{
		"regex.toml": "[[stage]]\nuse = \"parse\"\n\n[[stage]]\nuse = \"dialplan\"\n[[stage.rule]]\nmatch = '^0(9'\nprefix = \"+421\"\n",
		"table.toml": "[[stage]]\nuse = \"prefixes\"\nfile = \"routes.csv\"\n",
		"routes.csv": "# prefix,set\n+421,pstn\n+421903,orange,extra\n",
		"did.toml":   "[[stage]]\nuse = \"did\"\nfile = \"dids.toml\"\n",
		"dids.toml":  "\"+421212345678\" = \"alice\"\n\"+421212345679\" = \n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		config, stderr string
	}{
		{"regex.toml", "regex.toml:7:1: stage 2 (dialplan): rule[0]: match: error parsing regexp: missing closing ): `^0(9`"},
		{"table.toml", "table.toml:3:1: stage 1 (prefixes): file: " + dir + "/routes.csv:3: 3 fields, want 2"},
		{"did.toml", "did.toml:3:1: stage 1 (did): file: " + dir + "/dids.toml:2: "},
	}
	for i, tc := range tests {
		code, _, stderr := runCLI(t, dir, "validate", tc.config)
		if code != 1 || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("test %d: switchboard validate %s: exit %d, stderr %q; want 1 and %q", i, tc.config, code, stderr, tc.stderr)
		}
	}
}
