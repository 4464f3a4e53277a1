package redirect

import (
	"os"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

// exampleConfig is the example's config file.
const exampleConfig = "../config.toml"

// TestExampleConfigBuilds builds the pipeline of the example's config.toml,
// as `customstage validate` does.
func TestExampleConfigBuilds(t *testing.T) {
	cfg, err := config.Load(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	stages, err := pipeline.Check(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(stages, ", "); !strings.Contains(got, "stage 3 (redirect), stage 4 (location)") {
		t.Errorf("stages %s: want redirect before location", got)
	}
}

// TestExampleConfigCalls runs calls through the example's chain: 100 is
// redirected even though nobody registered as 100, and a call to a
// registered user is forwarded.
func TestExampleConfigCalls(t *testing.T) {
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	h := stagetest.Chain(t, string(data), stagetest.WithConfigPath(exampleConfig))
	if res := h.Request(stagetest.Request(t, invite("sip:100@example.org"))); res.Code() != 302 || res.Header("Contact") != "<sip:alice@example.org>" {
		t.Errorf("INVITE 100: %s", res)
	}
	if res := h.Request(stagetest.Request(t, invite("sip:alice@example.org"))); res.Code() != 404 {
		t.Errorf("INVITE alice before she registers: %s", res)
	}
	reg := h.Request(stagetest.Request(t, `
REGISTER sip:example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKreg1
Max-Forwards: 70
From: <sip:alice@example.org>;tag=r1
To: <sip:alice@example.org>
Call-ID: reg1
CSeq: 1 REGISTER
Contact: <sip:alice@192.0.2.20:5060>
`))
	if reg.Code() != 200 {
		t.Fatalf("REGISTER: %s", reg)
	}
	res := h.Request(stagetest.Request(t, invite("sip:alice@example.org")))
	if res.Verdict != pipeline.Forwarded || len(res.Targets) != 1 || res.Targets[0].URI.String() != "sip:alice@192.0.2.20:5060" {
		t.Errorf("INVITE alice: %s", res)
	}
}
