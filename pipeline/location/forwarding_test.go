package location

import "testing"

func TestForwardingValidate(t *testing.T) {
	tests := []struct {
		f    Forwarding
		want string // "" for valid
	}{
		{Forwarding{}, ""},
		{Forwarding{Busy: "bob", NoAnswer: "set:voicemail", Unavailable: "sip:+421212345678@pbx.example.net", NoAnswerAfter: 15}, ""},
		{Forwarding{Busy: "bob@example.org"}, ""},
		{Forwarding{Busy: " bob"}, `busy: target " bob" is empty or has spaces around it`},
		{Forwarding{NoAnswer: "set:"}, `no_answer: target "set:" names no set`},
		{Forwarding{Unconditional: "<sip:bob@x>"}, `unconditional: target "<sip:bob@x>" has a space, '<', '>' or '"'`},
		{Forwarding{NoAnswer: "bob", NoAnswerAfter: -1}, "no_answer_after: -1 is negative"},
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
