package location_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	loc "github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/all"
)

func request(method, ruri, toTag, route string) string {
	to := "To: <" + ruri + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	r := ""
	if route != "" {
		r = "Route: " + route + "\n"
	}
	return method + " " + ruri + ` SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: <sip:alice@example.org>;tag=1928301774
` + to + `
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 1 ` + method + `
Contact: <sip:alice@192.0.2.10:5060>
` + r
}

func TestLocation(t *testing.T) {
	now := time.Now()
	bindings := map[string][]loc.Binding{
		"bob": {
			{Contact: "sip:bob@192.0.2.20:5060", Received: "192.0.2.20:5060", Transport: "UDP", Expires: now.Add(time.Hour)},
			{Contact: "sip:bob@10.0.0.5:5062;transport=udp", Received: "198.51.100.7:40000", Transport: "UDP", NAT: true, Expires: now.Add(time.Hour)},
			{Contact: "sip:bob@192.0.2.30:5070;transport=tcp", Received: "192.0.2.30:51000", Transport: "TCP", Expires: now.Add(time.Hour), Path: []string{"<sip:edge.example.org;lr>"}},
		},
		"carol": {{Contact: "sip:carol@192.0.2.40", Expires: now.Add(time.Second)}},
		// frank is a browser phone, registered over WebSocket.
		"frank": {{Contact: "sip:k3f9@df7jal23ls0d.invalid;transport=ws", Received: "192.0.2.70:52000", Transport: "WS", Expires: now.Add(time.Hour)}},
		// grace registered over TLS, heidi is a browser phone over WSS.
		"grace": {{Contact: "sip:grace@192.0.2.80:5061;transport=tls", Received: "192.0.2.80:41000", Transport: "TLS", Expires: now.Add(time.Hour)}},
		"heidi": {{Contact: "sip:h7x2@a8kq0s1mzp3c.invalid;transport=wss", Received: "192.0.2.90:53000", Transport: "WSS", Expires: now.Add(time.Hour)}},
		// dave registered over TCP through this instance (its Path names us)
		// and erin through another instance.
		"dave": {{Contact: "sip:dave@192.0.2.50:5070;transport=tcp", Received: "192.0.2.50:40001", Transport: "TCP", Expires: now.Add(time.Hour), Path: []string{"<sip:127.0.0.1:5060;transport=tcp;lr>"}}},
		// ivan's REGISTER was relayed, or nat = false: his Contact is used.
		// judy's router kept her address, not her port. kim is behind NAT
		// and registered through this instance, lars through another.
		"ivan": {{Contact: "sip:ivan@10.0.0.6:5060", Received: "198.51.100.8:40000", Transport: "UDP", Expires: now.Add(time.Hour)}},
		"judy": {{Contact: "sip:judy@198.51.100.9:5060", Received: "198.51.100.9:40009", Transport: "UDP", NAT: true, Expires: now.Add(time.Hour)}},
		"kim":  {{Contact: "sip:kim@192.168.1.20:5060", Received: "203.0.113.2:40000", Transport: "UDP", NAT: true, Expires: now.Add(time.Hour), Path: []string{"<sip:127.0.0.1:5060;transport=tcp;lr>"}}},
		"lars": {{Contact: "sip:lars@192.168.1.20:5060", Received: "203.0.113.3:40000", Transport: "UDP", NAT: true, Expires: now.Add(time.Hour), Path: []string{"<sip:192.0.2.200:5060;transport=tcp;lr>"}}},
		"erin": {{Contact: "sip:erin@192.0.2.60:5070;transport=tcp", Received: "192.0.2.60:40002", Transport: "TCP", Expires: now.Add(time.Hour), Path: []string{"<sip:192.0.2.200:5060;transport=tcp;lr>"}}},
	}
	tests := []struct {
		name   string
		raw    string
		routed bool
		// unsigned: routed by a Route of ours without a valid signature.
		unsigned bool
		verdict  pipeline.Verdict
		code     int
		targets  []pipeline.Target
	}{
		{name: "three devices", raw: request("INVITE", "sip:bob@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: ""},
			{Destination: "198.51.100.7:40000", Transport: "UDP"},
			{Path: []string{"<sip:edge.example.org;lr>"}}, // through the Path's first hop
		}},
		{name: "our IP as domain", raw: request("MESSAGE", "sip:bob@127.0.0.1:5060", "", ""), verdict: pipeline.Continue, targets: make([]pipeline.Target, 3)},
		{name: "unknown user", raw: request("INVITE", "sip:zed@example.org", "", ""), verdict: pipeline.Replied, code: 404},
		{name: "known user offline", raw: request("INVITE", "sip:carol@example.org", "", ""), verdict: pipeline.Replied, code: 480},
		{name: "foreign domain", raw: request("INVITE", "sip:bob@example.com", "", ""), verdict: pipeline.Replied, code: 403},
		{name: "preloaded route", raw: request("INVITE", "sip:bob@example.org", "", "<sip:other.example.com;lr>"), verdict: pipeline.Replied, code: 403},
		{name: "no user", raw: request("MESSAGE", "sip:example.org", "", ""), verdict: pipeline.Replied, code: 404},
		{name: "our own Path", raw: request("INVITE", "sip:dave@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "192.0.2.50:40001", Transport: "TCP"},
		}},
		{name: "over WebSocket", raw: request("INVITE", "sip:frank@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "192.0.2.70:52000", Transport: "WS"},
		}},
		{name: "over TLS", raw: request("INVITE", "sip:grace@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "192.0.2.80:41000", Transport: "TLS"},
		}},
		{name: "over WSS", raw: request("INVITE", "sip:heidi@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "192.0.2.90:53000", Transport: "WSS"},
		}},
		{name: "not behind NAT: at the Contact", raw: request("INVITE", "sip:ivan@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: ""},
		}},
		{name: "behind NAT, the same IP", raw: request("INVITE", "sip:judy@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "198.51.100.9:40009", Transport: "UDP"},
		}},
		{name: "behind NAT, our own Path", raw: request("INVITE", "sip:kim@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "203.0.113.2:40000", Transport: "UDP"},
		}},
		{name: "behind NAT, another instance's Path", raw: request("INVITE", "sip:lars@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Path: []string{"<sip:192.0.2.200:5060;transport=tcp;lr>"}},
		}},
		{name: "another instance's Path", raw: request("INVITE", "sip:erin@example.org", "", ""), verdict: pipeline.Continue, targets: []pipeline.Target{
			{Path: []string{"<sip:192.0.2.200:5060;transport=tcp;lr>"}},
		}},
		{name: "sent along our Path", raw: strings.Replace(request("INVITE", "sip:dave@192.0.2.50:5070;transport=tcp", "", ""), "To: <sip:dave@192.0.2.50:5070;transport=tcp>", "To: <sip:dave@example.org>", 1), unsigned: true, verdict: pipeline.Continue, targets: []pipeline.Target{
			{Destination: "192.0.2.50:40001", Transport: "TCP"},
		}},
		{name: "routed to us, not a contact", raw: strings.Replace(request("INVITE", "sip:mallory@203.0.113.9", "", ""), "To: <sip:mallory@203.0.113.9>", "To: <sip:dave@example.org>", 1), unsigned: true, verdict: pipeline.Replied, code: 403},
		{name: "in dialog, routed", raw: request("BYE", "sip:bob@192.0.2.20:5060", "xyz", ""), routed: true, verdict: pipeline.Continue},
		{name: "in dialog, forged", raw: request("BYE", "sip:bob@192.0.2.20:5060", "xyz", ""), verdict: pipeline.Replied, code: 404},
		{name: "in dialog, our Route copied", raw: request("INVITE", "sip:+19005550100@203.0.113.5", "xyz", ""), unsigned: true, verdict: pipeline.Replied, code: 404},
		{name: "in dialog ACK, forged", raw: request("ACK", "sip:bob@192.0.2.20:5060", "xyz", ""), verdict: pipeline.Dropped},
	}
	for i, tc := range tests {
		h := stagetest.Stage(t, "location", "")
		for aor, bs := range bindings {
			bs := bs
			if _, err := h.Location().Update(aor, now, func([]loc.Binding) ([]loc.Binding, error) { return bs, nil }); err != nil {
				t.Fatal(err)
			}
		}
		// carol's binding lapses: she is known, but offline.
		if _, err := h.Location().Update("carol", now, func([]loc.Binding) ([]loc.Binding, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
		var opts []stagetest.RequestOption
		if tc.routed {
			opts = append(opts, stagetest.Routed())
		}
		if tc.unsigned {
			opts = append(opts, stagetest.RoutedUnsigned())
		}
		res := h.Request(stagetest.Request(t, tc.raw), opts...)
		if res.Err != nil {
			t.Errorf("test %d (%s): %v", i, tc.name, res.Err)
			continue
		}
		if res.Verdict != tc.verdict {
			t.Errorf("test %d (%s): verdict %s, want %s", i, tc.name, res.Verdict, tc.verdict)
			continue
		}
		if tc.code != 0 && res.Code() != tc.code {
			t.Errorf("test %d (%s): code %d, want %d", i, tc.name, res.Code(), tc.code)
		}
		if tc.targets == nil {
			if len(res.Targets) != 0 {
				t.Errorf("test %d (%s): targets %v, want none", i, tc.name, res.Targets)
			}
			continue
		}
		if len(res.Targets) != len(tc.targets) {
			t.Errorf("test %d (%s): %d targets, want %d", i, tc.name, len(res.Targets), len(tc.targets))
			continue
		}
		if tc.name == "our IP as domain" {
			continue
		}
		for j, want := range tc.targets {
			got := res.Targets[j]
			if got.Destination != want.Destination || got.Transport != want.Transport || strings.Join(got.Path, ",") != strings.Join(want.Path, ",") {
				t.Errorf("test %d (%s): target %d = %+v, want %+v", i, tc.name, j, got, want)
			}
			if got.URI.User == "" {
				t.Errorf("test %d (%s): target %d URI %s", i, tc.name, j, got.URI.String())
			}
		}
	}
}
