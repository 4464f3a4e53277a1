package callforward

import (
	"testing"

	loc "github.com/switchboard-sip/switchboard/pipeline/location"
)

func TestQOf(t *testing.T) {
	tests := []struct {
		params string
		want   int
	}{
		{"", 1000},
		{"q=0.5", 500},
		{"expires=60;q=0.25", 250},
		{" Q = 0.1 ", 100},
		{"q=1", 1000},
		{"q=0", 0},
		{"q=2", 1000},
		{"q=x", 1000},
		{"+sip.instance=\"<urn:uuid:1>\";reg-id=1", 1000},
	}
	for i, tc := range tests {
		if got := qOf(loc.Binding{Params: tc.params}); got != tc.want {
			t.Errorf("test %d: qOf(%q) = %d, want %d", i, tc.params, got, tc.want)
		}
	}
}

func TestForwardingValidate(t *testing.T) {
	tests := []struct {
		f    loc.Forwarding
		want string // "" for valid
	}{
		{loc.Forwarding{}, ""},
		{loc.Forwarding{Busy: "bob", NoAnswer: "set:voicemail", Unavailable: "sip:+421212345678@pbx.example.net", NoAnswerAfter: 15}, ""},
		{loc.Forwarding{Busy: "bob@example.org"}, ""},
		{loc.Forwarding{Busy: " bob"}, `busy: target " bob" is empty or has spaces around it`},
		{loc.Forwarding{NoAnswer: "set:"}, `no_answer: target "set:" names no set`},
		{loc.Forwarding{Unconditional: "<sip:bob@x>"}, `unconditional: target "<sip:bob@x>" has a space, '<', '>' or '"'`},
		{loc.Forwarding{NoAnswer: "bob", NoAnswerAfter: -1}, "no_answer_after: -1 is negative"},
	}
	for i, tc := range tests {
		err := tc.f.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("test %d: Validate() = %q, want %q", i, got, tc.want)
		}
	}
}
