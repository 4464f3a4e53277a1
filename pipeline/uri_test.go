package pipeline

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestSameURI(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"sip:alice@192.0.2.1:5060", "sip:alice@192.0.2.1:5060", true},
		{"sip:alice@Host.Example.org", "SIP:alice@host.example.org", true},
		{"sip:alice@host", "sip:ALICE@host", false},
		{"sip:alice@host", "sip:alice@host:5060", false},
		{"sip:alice@host", "sips:alice@host", false},
		{"sip:alice:pw@host", "sip:alice@host", false},
		{"sip:alice@host;transport=TCP", "sip:alice@host;transport=tcp", true},
		{"sip:alice@host;transport=udp", "sip:alice@host", false},
		{"sip:alice@host;maddr=192.0.2.9", "sip:alice@host", false},
		{"sip:alice@host;ob", "sip:alice@host", true},
		{"sip:alice@host;foo=1", "sip:alice@host;foo=2", false},
		{"sip:alice@host;foo=1", "sip:alice@host;bar=2", true},
		{"sip:alice@host?subject=x", "sip:alice@host", false},
		// The examples of RFC 3261 19.1.4.
		{"sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp", true},
		{"sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", true},
		{"sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5", true},
		{"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com", "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", true},
		{"sip:alice@atlanta.com?subject=project%20x&priority=urgent", "sip:alice@atlanta.com?priority=urgent&subject=project%20x", true},
		{"SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP", false},
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", false},
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp", false},
		{"sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", false},
		{"sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4", false},
		{"sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off", false},
		// Escapes: a reserved character is not its escape; hex in any case.
		{"sip:a%3bb@host", "sip:a;b@host", false},
		{"sip:a%3bb@host", "sip:a%3Bb@host", true},
		{"sip:%2541@host", "sip:A@host", false},
		{"sip:bob%@host", "sip:bob%@host", true},
		{"tel:+15551234", "tel:+15551234", true},
		{"tel:+15551234", "tel:+15551235", false},
		{"tel:+15551234", "sip:+15551234@host", false},
	}
	for i, tc := range tests {
		var a, b sip.Uri
		if err := sip.ParseUri(tc.a, &a); err != nil {
			t.Fatal(err)
		}
		if err := sip.ParseUri(tc.b, &b); err != nil {
			t.Fatal(err)
		}
		if got := SameURI(&a, &b); got != tc.want {
			t.Errorf("test %d: SameURI(%s, %s) = %v, want %v", i, tc.a, tc.b, got, tc.want)
		}
		if got := SameURI(&b, &a); got != tc.want {
			t.Errorf("test %d: SameURI(%s, %s) = %v, want %v", i, tc.b, tc.a, got, tc.want)
		}
	}
}
