package config

import (
	"strings"
	"testing"
)

// TestErrorPositions checks that every kind of mistake the config package
// finds is reported at the line and column of the key that holds it.
func TestErrorPositions(t *testing.T) {
	const stage = "\n[[stage]]\nuse = \"forward\"\n"
	tests := []struct {
		name, text string
		want       []string
	}{
		{"syntax", "[server]\nlisten = [\"udp://127.0.0.1:5060\"\n", []string{"c.toml:2:"}},
		{"syntax in a value", "[server]\nlinger = 5s\n" + stage, []string{"c.toml:2:11: toml: "}},
		{"table twice", "[server]\n[server]\n" + stage, []string{"c.toml:2:2: toml: "}},
		{"unknown section", "[srever]\nx = 1\n" + stage, []string{`c.toml:1:2: unknown section or key "srever", did you mean "server"?`}},
		{"unknown key", "[server]\n  domians = [\"a.org\"]\n" + stage, []string{`c.toml:2:3: server: domians: unknown key, did you mean "domains"? (known: listen, domains,`}},
		{"unknown key, nothing near", "[log]\nzzz = 1\n" + stage, []string{`c.toml:2:1: log: zzz: unknown key (known: level,`}},
		{"wrong type", "[server]\n\nmax_transactions = \"many\"\n" + stage, []string{`c.toml:3:1: server: max_transactions: `}},
		{"bad value", "[log]\nformat = \"xml\"\n" + stage, []string{`c.toml:2:1: log: format: "xml" is not one of text, json`}},
		{"list item", "[server]\nlisten = [\"udp://127.0.0.1:5060\", \"sctp://127.0.0.1:5060\"]\n" + stage, []string{`c.toml:2:1: server: listen[1]: "sctp://`}},
		{"dotted key", "server.linger = \"90s\"\n" + stage, []string{`c.toml:1:1: server: linger: 1m30s is not between 1s and 32s`}},
		{"section validator", "[store]\nbackend = \"bolt\"\nurl = \"redis://x\"\n" + stage, []string{`c.toml:3:1: store: url: only the redis backend uses a URL`}},
		{"stage without use", "[log]\nlevel = \"info\"\n\n[[stage]]\nwhen = 'true'\n", []string{`c.toml:4:3: stage 1: use: missing`}},
		{"when not a string", stage + "\n[[stage]]\nuse = \"x\"\nwhen = 3\n", []string{`c.toml:7:1: stage 2 (x): when: must be a string`}},
		{"several at once", "[server]\naor = \"x\"\n[log]\nlevel = \"loud\"\n" + stage, []string{
			`c.toml:2:1: server: aor: "x" is neither`,
			`c.toml:4:1: log: level: "loud" is not one of`,
		}},
	}
	for i, tc := range tests {
		_, err := Parse("c.toml", []byte(tc.text))
		if err == nil {
			t.Errorf("test %d (%s): no error", i, tc.name)
			continue
		}
		got := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("test %d (%s): %q does not contain %q", i, tc.name, got, w)
			}
		}
		if n := strings.Count(got, "\n") + 1; n != len(tc.want) {
			t.Errorf("test %d (%s): %d errors, want %d:\n%s", i, tc.name, n, len(tc.want), got)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	known := []string{"registrar", "location", "forward", "record_route", "rewrite"}
	tests := []struct {
		word, want string
	}{
		{"registar", `, did you mean "registrar"?`},
		{"forwrd", `, did you mean "forward"?`},
		{"Forward", ""},
		{"record-route", `, did you mean "record_route"?`},
		{"auth", ""},
		{"x", ""},
		{"rewrite", ""},
	}
	for i, tc := range tests {
		if got := DidYouMean(tc.word, known); got != tc.want {
			t.Errorf("test %d (%s): %q, want %q", i, tc.word, got, tc.want)
		}
	}
}

func TestCountFromOne(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"when":                  "when",
		"rule[0].match":         "rule[1].match",
		"destination[2].weight": "destination[3].weight",
		"a[0].b[9]":             "a[1].b[10]",
		"listen[x]":             "listen[x]",
	} {
		if got := CountFromOne(in); got != want {
			t.Errorf("CountFromOne(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPositionsFind(t *testing.T) {
	ps, _ := positionsOf([]byte("[server]\nlisten = [\"a\"]\n\n[[stage]]\nuse = 'a'\n[[stage]]\n  use = 'b'\n  opts = { depth = 2 }\n" +
		"[[stage.rule]]\nmatch = 'x'\n[[stage.rule]]\nmatch = 'y'\n[stage.check]\nevery = 1\n"))
	tests := []struct {
		path string
		want Position
		ok   bool
	}{
		{"server", Position{1, 2}, true},
		{"server.listen[0]", Position{2, 1}, true},
		{"stage[1].use", Position{5, 1}, true},
		{"stage[2].use", Position{7, 3}, true},
		{"stage[2].when", Position{6, 3}, true},
		{"stage[2].opts.depth", Position{8, 12}, true},
		{"stage[2].rule[1].match", Position{10, 1}, true},
		{"stage[2].rule[2].match", Position{12, 1}, true},
		{"stage[2].rule[2].replace", Position{11, 3}, true},
		{"stage[2].check.every", Position{14, 1}, true},
		{"stage[3].use", Position{}, false},
		{"log.level", Position{}, false},
	}
	for i, tc := range tests {
		got, ok := ps.Find(tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("test %d (%s): %v %t, want %v %t", i, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}
