package capture

import (
	"strconv"
	"strings"
	"testing"
)

func TestFramer(t *testing.T) {
	msg := func(callID, body string) string {
		return "MESSAGE sip:b@x SIP/2.0\r\nCall-ID: " + callID + "\r\nl: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	a, b := msg("a", "hello"), msg("b", "")
	bad := strings.Replace(a, "l: 5", "l: x", 1)
	tests := []struct {
		reads []string // on one connection
		want  []string // the messages, in order
	}{
		{reads: []string{a}, want: []string{a}},
		{reads: []string{a + b}, want: []string{a, b}},
		{reads: []string{"\r\n\r\n" + a + "\r\n"}, want: []string{a}}, // keep-alives
		{reads: []string{a[:10], a[10:40], a[40:] + b[:5], b[5:]}, want: []string{a, b}},
		{reads: []string{a[:len(a)-2]}, want: nil},               // body not all there
		{reads: []string{"junk\r\n" + a}, want: []string{a}},     // no start line
		{reads: []string{bad}, want: []string{bad[:len(bad)-5]}}, // bad length: no body
	}
	for i, tc := range tests {
		var f Framer
		var got []string
		for _, r := range tc.reads {
			for _, m := range f.Frames("c", []byte(r)) {
				got = append(got, string(m))
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("test %d: got %q, want %q", i, got, tc.want)
		}
	}
}

func TestFramerConnections(t *testing.T) {
	var f Framer
	a := "OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"
	if got := f.Frames("1", []byte(a[:9])); len(got) != 0 {
		t.Fatalf("got %q from a part", got)
	}
	if got := f.Frames("2", []byte(a)); len(got) != 1 || string(got[0]) != a {
		t.Fatalf("connection 2: got %q", got)
	}
	f.Reset()
	if got := f.Frames("1", []byte(a[9:])); len(got) != 0 {
		t.Fatalf("after Reset the rest of a message must not be joined to its lost start: got %q", got)
	}
}

func TestCallID(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"INVITE sip:b@x:5060 SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID:  abc@h \r\n\r\n", "abc@h"},
		{"SIP/2.0 200 OK\r\ni: compact\r\n\r\n", "compact"},
		{"BYE sip:b SIP/2.0\r\ncall-id: lower\r\n\r\nCall-ID: body", "lower"},
		{"BYE sip:b SIP/2.0\r\n\r\nCall-ID: only-in-body", ""},
	}
	for i, tc := range tests {
		if got := CallID([]byte(tc.msg)); got != tc.want {
			t.Errorf("test %d: got %q, want %q", i, got, tc.want)
		}
	}
}

func TestPcapName(t *testing.T) {
	tests := []struct{ callID, want string }{
		{"abc-123@host.example", "abc-123@host.example.pcap"},
		{"a/b", "a_b-"},
		{"../x", ".._x-"},
		{"", "-"},
	}
	for i, tc := range tests {
		got := PcapName(tc.callID)
		if strings.Contains(got, "/") || !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, ".pcap") {
			t.Errorf("test %d: got %q, want a plain file name starting %q", i, got, tc.want)
		}
	}
	if PcapName("a/b") == PcapName("a_b") {
		t.Errorf("a/b and a_b share a file")
	}
}
