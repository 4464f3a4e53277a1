package registrar

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// flow is a Contact of alice's phone instance 0001 for the flow regID.
func flow(regID string, port int, extra string) string {
	return fmt.Sprintf(`Contact: <sip:alice@192.0.2.1:%d;ob>;+sip.instance="<urn:uuid:0001>";reg-id=%s%s`, port, regID, extra)
}

// flowContact is the Contact of flow as the 200 lists it.
func flowContact(regID string, port, expires int) string {
	return fmt.Sprintf(`<sip:alice@192.0.2.1:%d;ob>;+sip.instance="<urn:uuid:0001>";reg-id=%s;expires=%d`, port, regID, expires)
}

// flows checks that alice's bindings are the flows (reg-id and source
// address) listed, in order.
func flows(want ...string) func([]location.Binding) error {
	return func(bs []location.Binding) error {
		var got []string
		for _, b := range bs {
			got = append(got, b.RegID()+"@"+b.Received)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("flows %v, want %v", got, want)
		}
		return nil
	}
}

// TestOutbound checks RFC 5626 section 6: one binding per flow
// (+sip.instance and reg-id), several flows per instance, Require:
// outbound in the 200 of a REGISTER that binds a flow, and reg-id ignored
// where this registrar is not the flow's edge.
func TestOutbound(t *testing.T) {
	outbound := map[string]string{"Require": "outbound", "Supported": "outbound"}
	secondVia := func(req *sip.Request) {
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "192.0.2.99", Params: sip.NewParams()})
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "two flows of one instance are both kept; a new flow 1 replaces the old",
			steps: []step{
				{msg: register("f1", 1, flow("1", 5060, "")), code: 200, reason: "OK", headers: outbound,
					contacts: []string{flowContact("1", 5060, 3600)}, stored: flows("1@192.0.2.1:5060")},
				{msg: register("f2", 1, flow("2", 5060, "")), src: "192.0.2.1:5070", code: 200, reason: "OK", headers: outbound,
					contacts: []string{flowContact("1", 5060, 3600), flowContact("2", 5060, 3600)},
					stored:   flows("1@192.0.2.1:5060", "2@192.0.2.1:5070")},
				{at: time.Minute, msg: register("f3", 1, flow("1", 5062, "")), src: "192.0.2.1:6000", code: 200, reason: "OK", headers: outbound,
					contacts: []string{flowContact("1", 5062, 3600), flowContact("2", 5060, 3540)},
					stored:   flows("1@192.0.2.1:6000", "2@192.0.2.1:5070")},
				{at: time.Minute, msg: register("f2", 2, flow("2", 5060, ";expires=0")), src: "192.0.2.1:5070", code: 200, reason: "OK", headers: outbound,
					contacts: []string{flowContact("1", 5062, 3600)}, stored: flows("1@192.0.2.1:6000")},
			},
		},
		{
			name: "a REGISTER relayed by another proxy without an outbound Path: reg-id ignored",
			steps: []step{
				{msg: register("f1", 1, flow("1", 5060, "")), mutate: secondVia, code: 200, reason: "OK",
					contacts: []string{`<sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:0001>";expires=3600`}, stored: flows("@192.0.2.1:5060")},
				// Without the reg-id the instance names the binding:
				// a second "flow" replaces it.
				{msg: register("f2", 1, flow("2", 5060, "")), mutate: secondVia, src: "192.0.2.1:5070", code: 200, reason: "OK",
					contacts: []string{`<sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:0001>";expires=3600`}, stored: flows("@192.0.2.1:5070")},
			},
		},
		{
			name: "a REGISTER through an edge proxy whose Path says ob",
			steps: []step{
				{msg: register("f1", 1, flow("1", 5060, ""), "Path: <sip:edge.example.net;lr;ob>"), mutate: secondVia, code: 200, reason: "OK", headers: outbound,
					contacts: []string{flowContact("1", 5060, 3600)}, stored: flows("1@192.0.2.1:5060")},
			},
		},
		{
			name: "reg-id without +sip.instance is ignored",
			steps: []step{
				{msg: register("f1", 1, "Contact: <sip:alice@192.0.2.1:5060>;reg-id=1"), code: 200, reason: "OK",
					contacts: []string{"<sip:alice@192.0.2.1:5060>;expires=3600"}, stored: flows("@192.0.2.1:5060")},
			},
		},
		{
			name: "a malformed reg-id",
			steps: []step{
				{msg: register("f1", 1, flow("x", 5060, "")), code: 400, reason: "Bad Request: malformed reg-id parameter in Contact"},
				{msg: register("f1", 2, flow("0", 5060, "")), code: 400, reason: "Bad Request: malformed reg-id parameter in Contact"},
				{msg: register("f1", 3, flow("2147483648", 5060, "")), code: 400, reason: "Bad Request: malformed reg-id parameter in Contact"},
			},
		},
		{
			name: "Require: outbound is understood",
			steps: []step{
				{msg: register("f1", 1, flow("1", 5060, ""), "Require: outbound"), code: 200, reason: "OK", headers: outbound,
					contacts: []string{flowContact("1", 5060, 3600)}},
			},
		},
	}
	for i, tc := range tests {
		h, err := newRegistrar(t, "", location.NewMemory())
		if err != nil {
			t.Fatalf("test %d (%s): build: %v", i, tc.name, err)
		}
		for j, s := range tc.steps {
			if err := run(t, h, s); err != nil {
				t.Errorf("test %d (%s): step %d: %v", i, tc.name, j, err)
			}
		}
	}
}

func TestValidRegID(t *testing.T) {
	tests := []struct {
		v  string
		ok bool
	}{
		{"1", true}, {"2147483647", true}, {"007", true},
		{"", false}, {"0", false}, {"00", false}, {"2147483648", false}, {"99999999999", false}, {"1a", false}, {"-1", false},
	}
	for i, tc := range tests {
		if got := validRegID(tc.v); got != tc.ok {
			t.Errorf("test %d: validRegID(%q) = %v, want %v", i, tc.v, got, tc.ok)
		}
	}
}
