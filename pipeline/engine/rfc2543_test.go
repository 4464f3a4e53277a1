package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// tortureDir holds the RFC 4475 messages.
const tortureDir = "../../cmd/switchboard/testdata/rfc4475"

func torture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tortureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sipMessage joins header lines into a message with CRLF line ends.
func sipMessage(lines ...string) []byte {
	return []byte(strings.Join(append(lines, "", ""), "\r\n"))
}

func TestHasRFC3261Branch(t *testing.T) {
	tests := []struct {
		via  string
		want bool
	}{
		{"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport", true},
		{"v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx", true},
		{"VIA : SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bKx", true},
		{"Via: SIP/2.0/UDP 192.0.2.1", false},
		{"Via: SIP/2.0/UDP 192.0.2.1;branch=390skdjuw", false},
		{"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK", false},          // the cookie alone (badbranch.dat)
		{"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK;rport", false},    // the cookie alone
		{"Via: SIP/2.0/UDP 192.0.2.1;Branch=z9hG4bKx", false},         // sipgo reads "Branch" as another parameter
		{"Via: SIP/2.0/UDP 192.0.2.1; branch=z9hG4bKx", true},         // sipgo skips the space after ";"
		{"Via: SIP/2.0/UDP 192.0.2.1;branch = z9hG4bKx", false},       // but reads "branch " as another parameter
		{"Via: SIP/2.0/UDP a, SIP/2.0/UDP b;branch=z9hG4bKx", false},  // the cookie is in the second value
		{"Via: SIP/2.0/UDP 192.0.2.1;branch=x;branch=z9hG4bKx", true}, // sipgo keeps the last
		{"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx;branch=x", false},
		{"Via: SIP/2.0/UDP 192.0.2.1;mybranch=z9hG4bKx", false},
		{"Via: SIP/2.0/UDP 192.0.2.1;\r\n branch=z9hG4bKx", false}, // folded: looked at closer
		{"Vias: SIP/2.0/UDP 192.0.2.1;branch=x", true},             // not a Via: the next one is the top Via
	}
	for i, tc := range tests {
		data := sipMessage("INVITE sip:bob@example.com SIP/2.0", "Max-Forwards: 70", tc.via, "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKlower", "CSeq: 1 INVITE")
		if got := hasRFC3261Branch(data); got != tc.want {
			t.Errorf("test %d: hasRFC3261Branch(%q) = %v, want %v", i, tc.via, got, tc.want)
		}
	}
}

// TestMarkRFC2543 checks which requests get a branch of the proxy's own,
// that sipgo then keys their transaction on it, and that restoreVia gives
// back the Via sipgo reads without it.
func TestMarkRFC2543(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		marked bool
	}{
		{"inv2543.dat", torture(t, "inv2543.dat"), true},
		{"wsinv.dat", torture(t, "wsinv.dat"), true},
		{"badbranch.dat", torture(t, "badbranch.dat"), true},
		{"lwsdisp.dat", torture(t, "lwsdisp.dat"), false},
		{"unreason.dat (a response)", torture(t, "unreason.dat"), false},
		{"test.dat (no Via)", torture(t, "test.dat"), false},
		{"several values", sipMessage("OPTIONS sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP a.example.com;rport, SIP/2.0/UDP b.example.com;branch=z9hG4bKb", "CSeq: 1 OPTIONS"), true},
		{"a cookie in a quoted parameter", sipMessage("OPTIONS sip:a@example.com SIP/2.0", `Via: SIP/2.0/UDP a.example.com;x=";branch=z9hG4bKq";branch=1`, "From: <sip:b@example.com>;tag=1", "CSeq: 1 OPTIONS"), true},
		{"compact, folded", sipMessage("OPTIONS sip:a@example.com SIP/2.0", "v: SIP/2.0/UDP a.example.com;\r\n branch=z9hG4bKfolded", "CSeq: 1 OPTIONS"), false},
		{"a repeated branch", sipMessage("OPTIONS sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa;branch=b", "CSeq: 1 OPTIONS"), true},
	}
	for i, tc := range tests {
		got := markRFC2543(tc.data, nil)
		if marked := string(got) != string(tc.data); marked != tc.marked {
			t.Errorf("test %d (%s): marked %v, want %v:\n%s", i, tc.name, marked, tc.marked, got)
			continue
		}
		if !tc.marked {
			continue
		}
		if n := len(got) - len(tc.data); n != len(";branch=")+len(rfc2543Branch)+16 && n != len(rfc2543Branch)+16+1 {
			t.Errorf("test %d (%s): %d bytes more, want the branch only", i, tc.name, len(got)-len(tc.data))
		}
		msg, err := sip.ParseMessage(got)
		if err != nil {
			t.Errorf("test %d (%s): sipgo cannot parse the marked request: %v", i, tc.name, err)
			continue
		}
		req := msg.(*sip.Request)
		key, err := sip.ServerTxKeyMake(req)
		if err != nil || !strings.HasPrefix(key, rfc2543Branch) {
			t.Errorf("test %d (%s): sipgo's transaction key %q (%v), want one on the proxy's branch", i, tc.name, key, err)
		}
		orig, _ := sip.ParseMessage(tc.data)
		restoreVia(req)
		if got, want := req.Via().Value(), orig.(*sip.Request).Via().Value(); got != want {
			t.Errorf("test %d (%s): restored Via %q, want %q", i, tc.name, got, want)
		}
	}
}

// TestRFC2543Branch checks what the branch made for an RFC 2543 request
// depends on (RFC 3261 17.2.3): the same for the INVITE, its
// retransmission, its CANCEL and the ACK of a non-2xx answer; another for
// another Request-URI, From tag, Call-ID, CSeq number or top Via sent-by.
func TestRFC2543Branch(t *testing.T) {
	invite := []string{
		"INVITE sip:UserB@example.com SIP/2.0",
		"Via: SIP/2.0/UDP iftgw.example.com",
		"From: <sip:+13035551111@ift.client.example.net;user=phone>;tag=abc",
		"To: sip:+16505552222@ss1.example.net;user=phone",
		"Call-ID: inv2543.1717@ift.client.example.com",
		"CSeq: 56 INVITE",
	}
	with := func(i int, line string) []byte {
		lines := append([]string(nil), invite...)
		lines[i] = line
		return sipMessage(lines...)
	}
	branch := func(data []byte) string {
		msg, err := sip.ParseMessage(markRFC2543(data, nil))
		if err != nil {
			t.Fatalf("%v:\n%s", err, data)
		}
		b, _ := msg.(*sip.Request).Via().Params.Get("branch")
		return b
	}
	base := branch(sipMessage(invite...))
	tests := []struct {
		what string
		data []byte
		same bool
	}{
		{"retransmission", sipMessage(invite...), true},
		{"ACK with a To tag", sipMessage("ACK sip:UserB@example.com SIP/2.0", invite[1], invite[2], invite[3]+";tag=x", invite[4], "CSeq: 56 ACK"), true},
		{"CANCEL", sipMessage("CANCEL sip:UserB@example.com SIP/2.0", invite[1], invite[2], invite[3], invite[4], "CSeq: 56 CANCEL"), true},
		{"From tag with spaces", with(2, "From: <sip:+13035551111@ift.client.example.net;user=phone> ; tag = abc"), true},
		{"sent-by in another case", with(1, "Via: SIP/2.0/UDP IFTGW.example.com"), true},
		{"another Request-URI", with(0, "INVITE sip:UserC@example.com SIP/2.0"), false},
		{"another From tag", with(2, "From: <sip:+13035551111@ift.client.example.net;user=phone>;tag=abd"), false},
		{"no From tag", with(2, "From: <sip:+13035551111@ift.client.example.net;user=phone>"), false},
		{"another Call-ID", with(4, "Call-ID: other@ift.client.example.com"), false},
		{"another CSeq number", with(5, "CSeq: 57 INVITE"), false},
		{"another sent-by", with(1, "Via: SIP/2.0/UDP iftgw.example.com:5070"), false},
	}
	for i, tc := range tests {
		if got := branch(tc.data); (got == base) != tc.same {
			t.Errorf("test %d (%s): branch %q, INVITE's %q: same %v, want %v", i, tc.what, got, base, got == base, tc.same)
		}
	}
}

// TestRFC2543WsinvAck checks that the ACK a client makes from sipgo's
// reading of wsinv.dat (its From re-written as `; ; tag =" 98asjd8"`)
// matches the INVITE's transaction.
func TestRFC2543WsinvAck(t *testing.T) {
	data := torture(t, "wsinv.dat")
	msg, err := sip.ParseMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	ack := sipMessage(
		"ACK "+req.Recipient.String()+" SIP/2.0",
		"Via: "+req.Via().Value(),
		"From: "+req.From().Value(),
		"To: "+req.To().Value()+";tag=proxy",
		"Call-ID: "+req.CallID().Value(),
		"CSeq: 9 ACK",
	)
	key := func(data []byte) string {
		m, err := sip.ParseMessage(markRFC2543(data, nil))
		if err != nil {
			t.Fatal(err)
		}
		k, err := sip.ServerTxKeyMake(m)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if a, b := key(data), key(ack); a != b {
		t.Errorf("the ACK's transaction key %q, the INVITE's %q:\n%s", b, a, ack)
	}
}

func TestUnmarkVia(t *testing.T) {
	marked := markRFC2543(torture(t, "ltgtruri.dat"), nil)
	r, ok := readRawRequest(marked)
	if !ok {
		t.Fatal("ltgtruri.dat not read")
	}
	if got := unmarkVia(r.vias[0]); got != "SIP/2.0/UDP 192.0.2.5" {
		t.Errorf("unmarked Via %q, want %q", got, "SIP/2.0/UDP 192.0.2.5")
	}
}

// TestRFC2543AckOf2xx checks that the ACK of an RFC 2543 INVITE gets the
// INVITE's branch, unless the INVITE was answered with a 2xx: then one of
// its own, which restoreVia takes off again.
func TestRFC2543AckOf2xx(t *testing.T) {
	request := func(method string) []byte {
		return sipMessage(method+" sip:bob@192.0.2.9 SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1:5060", "From: <sip:alice@example.com>;tag=a1",
			"To: <sip:bob@example.com>;tag=b2", "Call-ID: c2543", "CSeq: 1 "+method, "Content-Length: 0")
	}
	branch := func(data []byte) (string, *sip.Request) {
		t.Helper()
		msg, err := sip.ParseMessage(data)
		if err != nil {
			t.Fatal(err)
		}
		req := msg.(*sip.Request)
		b, _ := req.Via().Params.Get("branch")
		return b, req
	}
	inviteBranch, invite := branch(markRFC2543(request("INVITE"), nil))
	hash := restoreVia(invite)
	if len(hash) != 16 || inviteBranch != rfc2543Branch+hash {
		t.Fatalf("INVITE branch %q, restoreVia gave %q", inviteBranch, hash)
	}
	answered := func(h string) bool { return h == hash }
	tests := []struct {
		name     string
		data     []byte
		answered func(string) bool
		same     bool // the INVITE's branch
	}{
		{"the ACK of a non-2xx", request("ACK"), nil, true},
		{"the ACK of a non-2xx, another INVITE answered", request("ACK"), func(string) bool { return false }, true},
		{"the ACK of a 2xx", request("ACK"), answered, false},
		{"a retransmitted INVITE after a 2xx", request("INVITE"), answered, true},
	}
	for i, tc := range tests {
		b, req := branch(markRFC2543(tc.data, tc.answered))
		if (b == inviteBranch) != tc.same {
			t.Errorf("test %d (%s): branch %q, INVITE's %q", i, tc.name, b, inviteBranch)
		}
		if h := restoreVia(req); len(h) != 16 || (h == hash) != tc.same {
			t.Errorf("test %d (%s): restoreVia gave %q, INVITE's %q", i, tc.name, h, hash)
		}
		if v := req.Via().String(); strings.Contains(v, "branch") {
			t.Errorf("test %d (%s): the Via still has a branch after restoreVia: %s", i, tc.name, v)
		}
	}
}
