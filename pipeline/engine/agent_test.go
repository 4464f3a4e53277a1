package engine

import (
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestServerHeader checks that the responses the proxy makes (100 Trying,
// a 404 from the location stage, the 200 to OPTIONS for itself) carry
// server.server_header, and that the responses it relays carry none.
func TestServerHeader(t *testing.T) {
	tests := []struct {
		sections string
		want     string // "" for no Server header
	}{
		{"", "Switchboard"},
		{"server_header = \"Acme SBC\"\n", "Acme SBC"},
		{"server_header = \"\"\n", ""},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			c := newCoreOn(t, tc.sections, productChain, Options{})
			callee := newPhone(t, "bob", answering(nil, 180, 200))
			c.register(callee, "bob")
			caller := newPhone(t, "alice", nil)
			inv := caller.call(c, "bob", fmt.Sprintf("server-%d", i))
			caller.waitResponse(inv, 200)
			missing := caller.call(c, "nobody", fmt.Sprintf("server-nobody-%d", i))
			caller.waitResponse(missing, 404)
			options := caller.build(sip.OPTIONS, c.uri(""), c.uri(""), fmt.Sprintf("server-options-%d", i), 1)
			caller.send(c.addr, options)
			caller.waitResponse(options, 200)
			local := 0
			for _, r := range caller.find(func(m sip.Message) bool { _, ok := m.(*sip.Response); return ok }) {
				res := r.msg.(*sip.Response)
				relayed := res.CallID().Value() == inv.CallID().Value() && res.StatusCode >= 180
				want := tc.want
				if relayed {
					want = ""
				} else {
					local++
				}
				got := ""
				if h := res.GetHeader("Server"); h != nil {
					got = h.Value()
				}
				if n := len(res.GetHeaders("Server")); got != want || n > 1 {
					t.Errorf("%s: %d Server headers, %q; want %q", summary(res), n, got, want)
				}
			}
			if local < 4 {
				t.Errorf("%d responses made by the proxy, want 100 and 404 to the INVITEs and 200 to OPTIONS:\n%s", local, caller.dump())
			}
		})
	}
}
