package engine

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// keepaliveChain is the product's chain with short keepalives.
const keepaliveChain = `
[[stage]]
use = "parse"
[[stage]]
use = "registrar"
keepalive = "150ms"
keepalive_timeout = "600ms"
[[stage]]
use = "location"
[[stage]]
use = "record_route"
[[stage]]
use = "forward"
`

// TestKeepaliveUserAgent checks that the pings carry server.user_agent,
// and no User-Agent when it is empty.
func TestKeepaliveUserAgent(t *testing.T) {
	tests := []struct {
		sections string
		want     string // "" for none
	}{
		{"user_agent = \"Acme pinger\"\n", "Acme pinger"},
		{"user_agent = \"\"\n", ""},
	}
	for i, tc := range tests {
		c := newCoreOn(t, tc.sections, keepaliveChain, Options{})
		c.e.Start()
		natted := newPhone(t, "natted", nil)
		c.bind(natted, "natted", "sip:natted@10.0.0.5:5060")
		ping := natted.wait("a ping", 1, func(m sip.Message) bool { req, ok := m.(*sip.Request); return ok && req.Method == sip.OPTIONS }).msg.(*sip.Request)
		ua := ""
		if h := ping.GetHeader("User-Agent"); h != nil {
			ua = h.Value()
		}
		if ua != tc.want || len(ping.GetHeaders("User-Agent")) > 1 {
			t.Errorf("test %d: ping User-Agent %q, want %q", i, ua, tc.want)
		}
	}
}

// TestKeepalive registers three phones over UDP: two whose Contact names
// a private address (behind NAT), one of which answers OPTIONS 405 and one
// nothing, and one whose Contact is its own address. The first gets pings
// from the proxy's socket, with the User-Agent, and keeps its binding; the
// silent one is removed and listed as removed; the third gets no ping.
func TestKeepalive(t *testing.T) {
	c := newCore(t, keepaliveChain)
	c.e.Start()
	answers405 := func(ph *phone, req *sip.Request, from *net.UDPAddr) {
		if req.Method == sip.OPTIONS {
			ph.send(from.String(), sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
		}
	}
	natted := newPhone(t, "natted", answers405)
	silent := newPhone(t, "silent", nil)
	direct := newPhone(t, "direct", answers405)
	c.bind(natted, "natted", "sip:natted@10.0.0.5:5060")
	c.bind(silent, "silent", "sip:silent@10.0.0.6:5060")
	c.register(direct, "direct")

	pings := func(m sip.Message) bool { req, ok := m.(*sip.Request); return ok && req.Method == sip.OPTIONS }
	got := natted.wait("two pings", 2, pings)
	ping, from := got.msg.(*sip.Request), got.from
	if from.String() != c.addr {
		t.Errorf("ping from %s, want the socket the REGISTER came in on, %s", from, c.addr)
	}
	if ua := ping.GetHeader("User-Agent"); ua == nil || ua.Value() != config.DefaultAgent {
		t.Errorf("ping User-Agent %v, want %q", ua, config.DefaultAgent)
	}
	if ping.Recipient.String() != "sip:natted@10.0.0.5:5060" {
		t.Errorf("ping Request-URI %s, want the phone's Contact", ping.Recipient.String())
	}
	poll(t, "the silent binding removed", func() bool {
		bs, _, _ := c.e.svc.Location.Lookup("silent", time.Now())
		return len(bs) == 0
	})
	pinged, removed := c.e.svc.Keepalive.Flows()
	if len(removed) != 1 || removed[0].AOR != "silent" || removed[0].Unanswered < 2 {
		t.Errorf("removed %+v, want the silent binding after two pings or more", removed)
	}
	if len(pinged) != 1 || pinged[0].AOR != "natted" || pinged[0].LastAnswer.IsZero() || pinged[0].Local != c.addr {
		t.Errorf("pinged %+v, want natted, answered, from %s", pinged, c.addr)
	}
	if bs, _, _ := c.e.svc.Location.Lookup("natted", time.Now()); len(bs) != 1 {
		t.Errorf("the answering binding was removed: %v", bs)
	}
	if got := direct.find(pings); len(got) != 0 {
		t.Errorf("a phone not behind NAT got %d pings", len(got))
	}
}

// TestKeepaliveRestoredAtStart starts an engine on a store that holds a
// binding from behind NAT, as after a restart: the phone gets its first
// ping at once, from the socket the binding names, although it does not
// register and the interval is an hour.
func TestKeepaliveRestoredAtStart(t *testing.T) {
	chain := strings.Replace(keepaliveChain, "keepalive = \"150ms\"\nkeepalive_timeout = \"600ms\"", "keepalive = \"1h\"\nkeepalive_timeout = \"2h\"", 1)
	if chain == keepaliveChain {
		t.Fatal("no keepalive keys to lengthen in keepaliveChain")
	}
	c := newCore(t, chain)
	natted := newPhone(t, "natted", nil)
	b := location.Binding{Contact: "sip:natted@10.0.0.5:5060", CallID: "reg-natted", CSeq: 1, Expires: time.Now().Add(time.Hour),
		Received: natted.conn.LocalAddr().String(), Transport: "UDP", NAT: true, Local: c.addr}
	if _, err := c.e.svc.Location.Update("natted", time.Now(), func([]location.Binding) ([]location.Binding, error) { return []location.Binding{b}, nil }); err != nil {
		t.Fatal(err)
	}
	c.e.Start()
	got := natted.wait("a ping", 1, func(m sip.Message) bool { req, ok := m.(*sip.Request); return ok && req.Method == sip.OPTIONS })
	if got.from.String() != c.addr || got.msg.(*sip.Request).Recipient.String() != b.Contact {
		t.Errorf("ping from %s to %s, want from %s to %s", got.from, got.msg.(*sip.Request).Recipient.String(), c.addr, b.Contact)
	}
}
