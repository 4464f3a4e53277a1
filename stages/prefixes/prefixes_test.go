package prefixes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

func invite(user string) string {
	return `
INVITE sip:` + user + `@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
To: <sip:` + user + `@example.org>
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Content-Length: 0

`
}

// harness writes the table file name with data in a temporary folder and
// builds a prefixes stage on it.
func harness(t *testing.T, name, data string, opts ...stagetest.Option) (*stagetest.Harness, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	opts = append(opts, stagetest.WithConfigPath(filepath.Join(dir, "test.toml")))
	return stagetest.Chain(t, declareSets("pstn", "orange", "mobile", "telekom")+stagetest.StageTOML("prefixes", `file = "`+name+`"`), opts...), path
}

// declareSets returns [[set]] tables for names, each with one destination:
// the sets a prefix table may name.
func declareSets(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "[[set]]\nname = %q\n[[set.destination]]\nuri = \"sip:127.0.0.1:5081\"\n\n", n)
	}
	return b.String()
}

const table = `# operators of Slovakia
prefix,set
+421,pstn
+421903,orange
+4219,mobile
`

func TestLongestMatch(t *testing.T) {
	for _, name := range []string{"routes.csv", "routes.toml"} {
		data := table
		if strings.HasSuffix(name, ".toml") {
			data = "\"+421\" = \"pstn\"\n\"+421903\" = \"orange\"\n'+4219' = \"mobile\"\n"
		}
		h, _ := harness(t, name, data)
		tests := []struct {
			user string
			want pipeline.Route
		}{
			{"+421903123456", pipeline.Route{Set: "orange", Prefix: "+421903"}},
			{"+421904123456", pipeline.Route{Set: "mobile", Prefix: "+4219"}},
			{"+421212345678", pipeline.Route{Set: "pstn", Prefix: "+421"}},
			{"+43123", pipeline.Route{}},
			{"alice", pipeline.Route{}},
		}
		for i, tc := range tests {
			res := h.Request(stagetest.Request(t, invite(tc.user)))
			if res.Err != nil || res.Verdict != pipeline.Continue {
				t.Fatalf("%s test %d: %v %v", name, i, res.Verdict, res.Err)
			}
			if got := res.Context.Route; got != tc.want {
				t.Errorf("%s test %d: %s: route %+v, want %+v", name, i, tc.user, got, tc.want)
			}
			if d := res.Changed(); !d.Empty() {
				t.Errorf("%s test %d: the request changed:\n%s", name, i, d)
			}
		}
	}
}

func TestReloadOnFileChange(t *testing.T) {
	var logs stagetest.Logs
	h, path := harness(t, "routes.csv", table, stagetest.WithLogger(logs.Logger()))
	set := func() string {
		return h.Request(stagetest.Request(t, invite("+421903123456"))).Context.Route.Set
	}
	if got := set(); got != "orange" {
		t.Fatalf("before: %q", got)
	}
	wait := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); set() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the set is %q, want %q", set(), want)
			}
		}
	}
	if err := os.WriteFile(path, []byte(strings.Replace(table, "+421903,orange", "+421903,telekom", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("telekom")
	// A broken edit keeps the table in force.
	if err := os.WriteFile(path, []byte("+421903,broken\n+4219x,bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "outcome=failed"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the broken edit was not logged")
		}
	}
	if want := path + `:2: \"+4219x\" is not a number`; !strings.Contains(logs.String(), want) {
		t.Errorf("the log does not name %s:\n%s", want, logs.String())
	}
	if got := set(); got != "telekom" {
		t.Errorf("after a broken edit: %q", got)
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("+421,pstn\n+421x,bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		keys, want string
	}{
		{``, "stage 1 (prefixes): file: missing"},
		{`file = "bad.csv"`, "stage 1 (prefixes): file: " + dir + `/bad.csv:2: "+421x" is not a number`},
		{`file = "none.csv"`, "stage 1 (prefixes): file: open " + dir + "/none.csv: no such file"},
	}
	for i, tc := range tests {
		_, err := stagetest.BuildStage(t, "prefixes", tc.keys, stagetest.WithConfigPath(filepath.Join(dir, "test.toml")))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want %q", i, err, tc.want)
		}
	}
}

func TestValidateSets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.csv")
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := stagetest.StageTOML("prefixes", `file = "routes.csv"`)
	_, err := stagetest.Build(t, declareSets("pstn", "mobile")+stage, stagetest.WithConfigPath(filepath.Join(dir, "test.toml")))
	want := `stage 1 (prefixes): file: ` + path + `:4: "+421903": unknown set "orange" (sets: pstn, mobile)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	if _, err := stagetest.Build(t, declareSets("pstn", "mobile", "orange")+stage, stagetest.WithConfigPath(filepath.Join(dir, "test.toml"))); err != nil {
		t.Errorf("all sets known: %v", err)
	}
}
