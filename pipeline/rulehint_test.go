package pipeline

import (
	"strings"
	"testing"
)

func TestRuleHints(t *testing.T) {
	tests := []struct {
		rule string
		want string // in the error; "" for no hint
	}{
		{`respons.code == 200`, `unknown name respons (1:1) in ` + "`| respons.code == 200`" + `, did you mean "response"?`},
		{`request.methd == "INVITE"`, `, did you mean "method"?`},
		{`request.uri.hots == "a.org"`, `, did you mean "host"?`},
		{`from.usr == "alice" && to.user == "bob"`, `, did you mean "user"?`},
		{`cidr(source.ip, "10.0.0.0/8") && sorce.port == 5060`, `, did you mean "source"?`},
		{`cidrr(source.ip, "10.0.0.0/8")`, `, did you mean "cidr"?`},
		{`transprot == "TCP"`, `, did you mean "transport"?`},
		{`zebra == 1`, ""},
		{`request.method`, ""},
	}
	for i, tc := range tests {
		_, err := CompileRule(tc.rule)
		if err == nil {
			t.Errorf("test %d (%s): compiled", i, tc.rule)
			continue
		}
		got := err.Error()
		if tc.want == "" && strings.Contains(got, "did you mean") {
			t.Errorf("test %d (%s): %q, want no hint", i, tc.rule, got)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("test %d (%s): %q does not contain %q", i, tc.rule, got, tc.want)
		}
	}
}
