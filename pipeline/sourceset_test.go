package pipeline

import (
	"net/netip"
	"testing"
)

// addrs is a destination at fixed addresses.
type addrs []string

var _ SetMember = (*addrs)(nil)

func (a *addrs) HasAddr(ip netip.Addr) bool {
	for _, s := range *a {
		if netip.MustParseAddr(s) == ip {
			return true
		}
	}
	return false
}

// TestSourceSet: source.set names the set with a destination at the
// request's source address, the first in the file when several have one,
// whatever order the stages added them in.
func TestSourceSet(t *testing.T) {
	p, err := build(t, testSets+`
[[stage]]
use = "test_echo"
when = 'source.set in ["pstn", ""] || "trunk" == source.set'`)
	if err != nil {
		t.Fatal(err)
	}
	b := &BuildContext{Pipeline: p}
	b.AddSetMember("trunk", &addrs{"198.51.100.7", "192.0.2.9"})
	b.AddSetMember("pstn", &addrs{"192.0.2.1", "192.0.2.9"})
	b.AddSetMember("pstn", &addrs{"2001:db8::5"})
	rule, err := CompileRule(`source.set == "pstn"`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src  string
		want string
	}{
		{"192.0.2.1", "pstn"},
		{"::ffff:192.0.2.1", "pstn"},
		{"2001:db8::5", "pstn"},
		{"198.51.100.7", "trunk"},
		{"192.0.2.9", "pstn"}, // in both: the first set in the file
		{"203.0.113.1", ""},
	}
	for i, tc := range tests {
		c := NewContext(p, parseReq(t, invite), Source{IP: netip.MustParseAddr(tc.src), Port: 5060}, "UDP")
		if got := c.Env().Source.Set; got != tc.want {
			t.Errorf("test %d: source %s: source.set = %q, want %q", i, tc.src, got, tc.want)
		}
		c = NewContext(p, parseReq(t, invite), Source{IP: netip.MustParseAddr(tc.src), Port: 5060}, "UDP")
		if ok, err := rule.Match(c); err != nil || ok != (tc.want == "pstn") {
			t.Errorf("test %d: source %s: %s = %v, %v", i, tc.src, rule.Text, ok, err)
		}
	}
	if got := p.SourceSet(netip.Addr{}); got != "" {
		t.Errorf("no source address: source.set = %q", got)
	}
}
