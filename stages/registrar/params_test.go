package registrar

import "testing"

func TestValidParam(t *testing.T) {
	tests := []struct {
		name, value string
		want        bool
	}{
		{"expires", "3600", true},
		{"+sip.instance", `"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"`, true},
		{"reg-id", "1", true},
		{"lr", "", true},
		{"maddr", "[2001:db8::1]", true},
		{"x", `"a \"quoted\" word"`, true},
		{"0", `"" ,"`, false}, // the fuzzer's: a quote inside
		{"x", `"unterminated`, false},
		{"x", `"ends in an escape\"`, false},
		{"x", "a b", false},
		{"x", "a,b", false},
		{"", "v", false},
		{"a:b", "v", false},
		{"x", "line\r\nbreak", false},
	}
	for _, tc := range tests {
		if got := validParam(tc.name, tc.value); got != tc.want {
			t.Errorf("validParam(%q, %q) = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}
