package did

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func invite(user string) string {
	return `
INVITE sip:` + user + `@192.0.2.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:+421905555555@trunk.example.net>;tag=1928301774
To: <sip:` + user + `@192.0.2.1>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Content-Length: 0

`
}

func build(t *testing.T, name, data, keys string) (*stagetest.Harness, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return stagetest.BuildStage(t, "did", `file = "`+name+`"`+"\n"+keys, stagetest.WithConfigPath(filepath.Join(dir, "test.toml")))
}

func TestMapsNumbersToUsers(t *testing.T) {
	files := map[string]string{
		"dids.csv":  "number,user\n+421212345678,alice\n+421212345679,bob@example.org\n",
		"dids.toml": "\"+421212345678\" = \"alice\"\n\"+421212345679\" = \"bob@example.org\"\n",
	}
	for name, data := range files {
		h, err := build(t, name, data, `when = 'source.ip == "192.0.2.99"'`)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			user, from, want string
		}{
			{"+421212345678", "192.0.2.99:5060", "sip:alice@192.0.2.1"},
			{"+421212345679", "192.0.2.99:5060", "sip:bob@example.org"},
			// Not a DID: unchanged.
			{"+421212345670", "192.0.2.99:5060", "sip:+421212345670@192.0.2.1"},
			{"+42121234567", "192.0.2.99:5060", "sip:+42121234567@192.0.2.1"},
			// Not from the trunk: the stage's rule skips it.
			{"+421212345678", "192.0.2.10:5060", "sip:+421212345678@192.0.2.1"},
		}
		for i, tc := range tests {
			res := h.Request(stagetest.Request(t, invite(tc.user)), stagetest.From(tc.from))
			if res.Err != nil {
				t.Fatalf("%s test %d: %v", name, i, res.Err)
			}
			if got := res.Request.Recipient.String(); got != tc.want {
				t.Errorf("%s test %d: %s", name, i, res.Changed())
			}
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"dids.csv", "+421212345678,alice\n+421212345679,bob smith\n", `dids.csv:2: "+421212345679": "bob smith": " " is not allowed in a user`},
		{"dids.csv", "+421212345678,a@b@c\n", `dids.csv:1: "+421212345678": "a@b@c" has more than one @`},
		{"dids.csv", "+421212345678,@example.org\n", `dids.csv:1: "+421212345678": "@example.org" is not a user`},
		{"dids.toml", "\"+421212345678\" = \"alice\"\n\"+421212345678\" = \"bob\"\n", `dids.toml:2: "+421212345678" is given twice (first on line 1)`},
		{"dids.toml", "\"+421212345678\" = alice\n", `dids.toml:1: `},
	}
	for i, tc := range tests {
		_, err := build(t, tc.name, tc.data, "")
		if err == nil || !strings.Contains(err.Error(), "stage 1 (did): file: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want %q", i, err, tc.want)
		}
	}
}
