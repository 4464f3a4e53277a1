package engine

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
)

func TestBestResponse(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bob", Host: "example.org"})
	mk := func(code int, challenge string) *sip.Response {
		r := sip.NewResponseFromRequest(req, code, "x", nil)
		if challenge != "" {
			r.AppendHeader(sip.NewHeader("WWW-Authenticate", challenge))
		}
		return r
	}
	tests := []struct {
		codes      []int
		want       int
		challenges int
	}{
		{[]int{486}, 486, 0},
		{[]int{486, 603}, 603, 0},
		{[]int{603, 302, 200}, 603, 0},
		{[]int{500, 404}, 404, 0},
		{[]int{404, 401}, 401, 0},
		{[]int{401, 407}, 401, 2},
		{[]int{503}, 500, 0},
		{[]int{408, 480, 302}, 302, 0},
		{[]int{}, 0, 0},
	}
	for i, tc := range tests {
		var finals []*sip.Response
		for _, c := range tc.codes {
			ch := ""
			if c == 401 || c == 407 {
				ch = "Digest realm=\"r\""
			}
			finals = append(finals, mk(c, ch))
		}
		best := bestResponse(finals)
		if tc.want == 0 {
			if best != nil {
				t.Errorf("test %d: got %d", i, best.StatusCode)
			}
			continue
		}
		if best == nil || best.StatusCode != tc.want {
			t.Errorf("test %d: got %v, want %d", i, best, tc.want)
			continue
		}
		if tc.challenges > 0 && len(best.GetHeaders("WWW-Authenticate")) != tc.challenges {
			t.Errorf("test %d: %d challenges, want %d", i, len(best.GetHeaders("WWW-Authenticate")), tc.challenges)
		}
	}
}

func TestNextHop(t *testing.T) {
	tests := []struct {
		raw       string
		dest, tpt string
	}{
		{"sip:bob@127.0.0.3:7000", "127.0.0.3:7000", "UDP"},
		{"sip:bob@127.0.0.3;transport=tcp", "127.0.0.3:5060", "TCP"},
		{"sip:bob@[::1]:5070", "[::1]:5070", "UDP"},
		{"sip:bob@127.0.0.3;transport=tls", "127.0.0.3:5061", "TLS"},
		// A domain without a port is what sipgo resolves, through SRV
		// when it has no address: the TLS name stays the domain.
		{"sips:bob@example.com", "example.com:5061", "TLS"},
		{"SIPS:bob@example.com;transport=tcp", "example.com:5061", "TLS"},
		{"sips:bob@example.com;transport=udp", "example.com:5061", "TLS"},
		{"sips:bob@example.com;transport=ws", "example.com:443", "WSS"},
		{"sip:bob@example.com:5080;transport=TLS", "example.com:5080", "TLS"},
	}
	for i, tc := range tests {
		var u sip.Uri
		if err := sip.ParseUri(tc.raw, &u); err != nil {
			t.Fatal(err)
		}
		req := sip.NewRequest(sip.INVITE, u)
		dest, tp := nextHop(req, pipelineTarget(u))
		if dest != tc.dest || tp != tc.tpt {
			t.Errorf("test %d: %s %s, want %s %s", i, dest, tp, tc.dest, tc.tpt)
		}
	}
}

func pipelineTarget(u sip.Uri) pipeline.Target { return pipeline.Target{URI: u} }
