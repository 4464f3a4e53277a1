package trunk_test

import (
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

func TestTrunk(t *testing.T) {
	tests := []struct {
		keys   string
		err    string
		target string // "" for none
		creds  bool
	}{
		{keys: `uri = "sip:sip.example.net"`, target: "sip:0900123456@sip.example.net"},
		{keys: `uri = "sip:sip.example.net:5080;transport=tcp"` + "\ncredentials = \"credentials.txt\"", target: "sip:0900123456@sip.example.net:5080;transport=tcp", creds: true},
		{keys: `uri = "sip:pstn@192.0.2.7"`, target: "sip:pstn@192.0.2.7"},
		{keys: `uri = "sip:sip.example.net"` + "\nregister_aor = \"sip:4021234567@sip.example.net\"\nregister_expires = \"5m\"", target: "sip:0900123456@sip.example.net"},
		{keys: ``, err: "uri: empty"},
		{keys: `uri = "tel:+421"`, err: `uri: "tel:+421" is not a SIP URI with a host`},
		{keys: `uri = "sip:sip.example.net"` + "\ncredentials = \"missing.txt\"", err: "credentials: open"},
		{keys: `uri = "sip:sip.example.net"` + "\nregistrar = \"sip:reg.example.net\"", err: "register_aor: empty, but registrar"},
		{keys: `uri = "sip:sip.example.net"` + "\nregister_aor = \"sip:u@x\"\nregister_expires = \"5s\"", err: "register_expires: 5s is under 10s"},
		{keys: `uri = "sip:sip.example.net"` + "\nregister_aor = \"nope\"", err: `register_aor: "nope" is not a SIP URI`},
	}
	for i, tc := range tests {
		h, err := stagetest.BuildStage(t, "trunk", tc.keys, stagetest.WithConfigPath("testdata/config.toml"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("test %d: error %v, want %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		res := h.Request(stagetest.Request(t, `INVITE sip:0900123456@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1
To: <sip:0900123456@example.org>
Call-ID: c1
CSeq: 1 INVITE
`))
		if len(res.Targets) != 1 || res.Targets[0].URI.String() != tc.target || (res.Targets[0].Credentials != nil) != tc.creds {
			t.Errorf("test %d: targets %+v, want %s", i, res.Targets, tc.target)
		}
		inDialog := h.Request(stagetest.Request(t, `BYE sip:0900123456@192.0.2.20 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhdt
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1
To: <sip:0900123456@example.org>;tag=2
Call-ID: c1
CSeq: 2 BYE
`))
		if len(inDialog.Targets) != 0 {
			t.Errorf("test %d: an in-dialog request got targets %+v", i, inDialog.Targets)
		}
	}
}

// TestTrunkSourceSet: a named trunk is known to source.set: a request
// from its address has source.set == its name, one from elsewhere "", and
// a rule may name it.
func TestTrunkSourceSet(t *testing.T) {
	h := stagetest.Chain(t, `
[[stage]]
use = "trunk"
when = 'source.set != "provider"'
uri = "sip:pstn@192.0.2.7:5080"
name = "provider"
`)
	tests := []struct {
		from    string
		want    string
		targets int // the trunk stage runs only for requests not from it
	}{
		{"192.0.2.7:5060", "provider", 0},
		{"192.0.2.7:5080", "provider", 0},
		{"192.0.2.8:5080", "", 1},
		{stagetest.DefaultSource, "", 1},
	}
	for i, tc := range tests {
		req := stagetest.Request(t, "INVITE sip:0900123456@example.org SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\nMax-Forwards: 70\nFrom: <sip:alice@example.org>;tag=1\nTo: <sip:0900123456@example.org>\nCall-ID: c1\nCSeq: 1 INVITE\n")
		if got := h.Context(req, stagetest.From(tc.from)).Env().Source.Set; got != tc.want {
			t.Errorf("test %d: from %s: source.set = %q, want %q", i, tc.from, got, tc.want)
		}
		if res := h.Request(req, stagetest.From(tc.from)); len(res.Targets) != tc.targets {
			t.Errorf("test %d: from %s: targets %+v, want %d", i, tc.from, res.Targets, tc.targets)
		}
	}

	// Without a name, the trunk is not known to source.set.
	h = stagetest.Stage(t, "trunk", `uri = "sip:pstn@192.0.2.7"`)
	req := stagetest.Request(t, "OPTIONS sip:example.org SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\nMax-Forwards: 70\nFrom: <sip:p@example.org>;tag=1\nTo: <sip:example.org>\nCall-ID: c2\nCSeq: 1 OPTIONS\n")
	if got := h.Context(req, stagetest.From("192.0.2.7:5060")).Env().Source.Set; got != "" {
		t.Errorf("an unnamed trunk: source.set = %q, want \"\"", got)
	}
}
