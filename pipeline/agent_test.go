package pipeline

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/config"
)

func TestStampAgents(t *testing.T) {
	tests := []struct {
		server     string // the [server] keys
		has        bool   // the message has its own header already
		wantServer string
		wantAgent  string
	}{
		{"", false, "Switchboard", "Switchboard"},
		{"server_header = 'Acme'\nuser_agent = 'Acme pinger'", false, "Acme", "Acme pinger"},
		{"server_header = ''\nuser_agent = ''", false, "", ""},
		{"", true, "theirs", "theirs"},
	}
	for i, tc := range tests {
		cfg, err := config.Parse("c.toml", []byte("[server]\n"+tc.server+"\n[[stage]]\nuse = 'x'\n"))
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		p := &Pipeline{Config: cfg}
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "192.0.2.1"})
		res := sip.NewResponse(200, "OK")
		if tc.has {
			req.AppendHeader(sip.NewHeader("User-Agent", "theirs"))
			res.AppendHeader(sip.NewHeader("Server", "theirs"))
		}
		p.StampServer(res)
		p.StampUserAgent(req)
		if got := headerValues(res, "Server"); got != tc.wantServer {
			t.Errorf("test %d: Server %q, want %q", i, got, tc.wantServer)
		}
		if got := headerValues(req, "User-Agent"); got != tc.wantAgent {
			t.Errorf("test %d: User-Agent %q, want %q", i, got, tc.wantAgent)
		}
	}
	var none *Pipeline
	none.StampServer(sip.NewResponse(200, "OK"))
}

// headerValues joins the values of every header named name.
func headerValues(m sip.Message, name string) string {
	out := ""
	for i, h := range m.GetHeaders(name) {
		if i > 0 {
			out += ", "
		}
		out += h.Value()
	}
	return out
}
