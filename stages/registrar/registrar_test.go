package registrar

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	phone1 = "<sip:alice@192.0.2.1:5060>"
	phone2 = "<sip:alice@192.0.2.2:5060>"
	phone3 = "<sip:alice@192.0.2.3:5060>"
)

// request returns the raw text of a request from alice's phone.
func request(method, ruri, to, callID string, cseq int, headers ...string) string {
	lines := []string{
		method + " " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-" + callID + fmt.Sprint(cseq),
		"Max-Forwards: 70",
		"From: <" + to + ">;tag=f-" + callID,
		"To: <" + to + ">",
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
	}
	lines = append(lines, headers...)
	lines = append(lines, "Content-Length: 0", "", "")
	return strings.Join(lines, "\r\n")
}

// register returns a REGISTER of alice@example.org.
func register(callID string, cseq int, headers ...string) string {
	return request("REGISTER", "sip:example.org", "sip:alice@example.org", callID, cseq, headers...)
}

// newRegistrar builds a harness of one registrar stage configured by keys,
// for the domain example.org, over store.
func newRegistrar(t *testing.T, keys string, store location.Store) (*stagetest.Harness, error) {
	t.Helper()
	return stagetest.BuildStage(t, "registrar", keys, stagetest.WithDomains("example.org"), stagetest.WithLocation(store))
}

// step is one request of a scenario and what must come of it.
type step struct {
	// at is when the request arrives, after t0.
	at  time.Duration
	msg string
	// mutate changes the parsed request, for what raw text cannot say.
	mutate func(*sip.Request)
	// sweep sweeps the store at the step's time before the request.
	sweep bool
	// src is the source address; "192.0.2.1:5060" if empty.
	src string
	// pass means the stage must continue without replying.
	pass   bool
	code   int
	reason string
	// contacts are the Contact values of the reply, exactly and in order.
	contacts []string
	// headers are other headers the reply must have, with their values.
	headers map[string]string
	// stored, if set, checks alice's bindings after the step.
	stored func(bs []location.Binding) error
}

func TestRegistrar(t *testing.T) {
	tests := []struct {
		name  string
		keys  string
		steps []step
	}{
		{
			name: "register one device",
			steps: []step{{
				msg:  register("c1", 1, "Contact: "+phone1),
				code: 200, reason: "OK",
				contacts: []string{phone1 + ";expires=3600"},
				headers:  map[string]string{"Date": "Sat, 01 Mar 2025 12:00:00 GMT", "Call-ID": "c1", "CSeq": "1 REGISTER"},
				stored: func(bs []location.Binding) error {
					want := location.Binding{
						AOR: "alice", Contact: "sip:alice@192.0.2.1:5060", CallID: "c1", CSeq: 1,
						Expires: t0.Add(time.Hour), Received: "192.0.2.1:5060", Transport: "UDP", Updated: t0,
					}
					if len(bs) != 1 || fmt.Sprint(bs[0]) != fmt.Sprint(want) {
						return fmt.Errorf("stored %+v, want %+v", bs, want)
					}
					return nil
				},
			}},
		},
		{
			name: "the User-Agent is stored, cut to its bound at a character",
			steps: []step{
				{
					msg:  register("c1", 1, "Contact: "+phone1, "User-Agent: Linphone/5.2.5 (belle-sip/5.2.4)"),
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"},
					stored: func(bs []location.Binding) error {
						if len(bs) != 1 || bs[0].UserAgent != "Linphone/5.2.5 (belle-sip/5.2.4)" {
							return fmt.Errorf("stored %+v, want the User-Agent", bs)
						}
						return nil
					},
				},
				{
					msg:  register("c1", 2, "Contact: "+phone1, "User-Agent: "+strings.Repeat("x", location.MaxUserAgent-1)+"é tail"),
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"},
					stored: func(bs []location.Binding) error {
						if want := strings.Repeat("x", location.MaxUserAgent-1); len(bs) != 1 || bs[0].UserAgent != want {
							return fmt.Errorf("stored User-Agent %q, want %d bytes cut before the é", bs[0].UserAgent, len(want))
						}
						return nil
					},
				},
			},
		},
		{
			name: "refresh of the same contact keeps one binding",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{
					at: 10 * time.Minute, src: "192.0.2.1:6000",
					msg:  register("c1", 2, "Contact: "+phone1, "Expires: 600"),
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=600"},
					stored: func(bs []location.Binding) error {
						if len(bs) != 1 || bs[0].Received != "192.0.2.1:6000" || bs[0].CSeq != 2 || !bs[0].Updated.Equal(t0.Add(10*time.Minute)) {
							return fmt.Errorf("refresh not recorded: %+v", bs)
						}
						return nil
					},
				},
				// An equivalent URI (RFC 3261 19.1.4) refreshes the binding
				// too, and becomes its contact.
				{
					at:   20 * time.Minute,
					msg:  register("c2", 1, "Contact: <sip:alice@192.0.2.1:5060;ob>"),
					code: 200, reason: "OK",
					contacts: []string{"<sip:alice@192.0.2.1:5060;ob>;expires=3600"},
				},
				// One that differs is another binding.
				{
					at:   20 * time.Minute,
					msg:  register("c2", 2, "Contact: <sip:ALICE@192.0.2.1:5060>"),
					code: 200, reason: "OK",
					contacts: []string{"<sip:alice@192.0.2.1:5060;ob>;expires=3600", "<sip:ALICE@192.0.2.1:5060>;expires=3600"},
				},
			},
		},
		{
			name: "two devices",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{
					at: time.Minute, src: "192.0.2.2:5060",
					msg:  register("c2", 1, "Contact: "+phone2),
					code: 200, reason: "OK",
					contacts: []string{phone1 + ";expires=3540", phone2 + ";expires=3600"},
				},
			},
		},
		{
			name: "a new contact with a known +sip.instance replaces the binding",
			steps: []step{
				{
					msg:  register("c1", 1, `Contact: <sip:alice@192.0.2.1:5060>;+sip.instance="<urn:uuid:0001>"`),
					code: 200, reason: "OK",
					contacts: []string{`<sip:alice@192.0.2.1:5060>;+sip.instance="<urn:uuid:0001>";expires=3600`},
				},
				{
					msg:  register("c2", 1, `Contact: <sip:alice@192.0.2.2:5060>;+sip.instance="<urn:uuid:0002>"`),
					code: 200, reason: "OK",
					contacts: []string{
						`<sip:alice@192.0.2.1:5060>;+sip.instance="<urn:uuid:0001>";expires=3600`,
						`<sip:alice@192.0.2.2:5060>;+sip.instance="<urn:uuid:0002>";expires=3600`,
					},
				},
				{
					at: time.Minute, src: "192.0.2.1:5062",
					msg:  register("c3", 1, `Contact: <sip:alice@192.0.2.1:5062>;+sip.instance="<urn:uuid:0001>"`),
					code: 200, reason: "OK",
					contacts: []string{
						`<sip:alice@192.0.2.1:5062>;+sip.instance="<urn:uuid:0001>";expires=3600`,
						`<sip:alice@192.0.2.2:5060>;+sip.instance="<urn:uuid:0002>";expires=3540`,
					},
					stored: func(bs []location.Binding) error {
						if len(bs) != 2 || bs[0].Instance != "<urn:uuid:0001>" || bs[0].Received != "192.0.2.1:5062" {
							return fmt.Errorf("instance not replaced: %+v", bs)
						}
						return nil
					},
				},
			},
		},
		{
			name: "past max_contacts the binding written longest ago goes",
			keys: "max_contacts = 2",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{at: time.Minute, msg: register("c2", 1, "Contact: "+phone2), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3540", phone2 + ";expires=3600"}},
				// Phone 1 refreshes: phone 2 is now the oldest.
				{at: 2 * time.Minute, msg: register("c1", 2, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600", phone2 + ";expires=3540"}},
				{at: 3 * time.Minute, msg: register("c3", 1, "Contact: "+phone3), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3540", phone3 + ";expires=3600"}},
				// Three at once: the first of them goes.
				{
					at:   4 * time.Minute,
					msg:  register("c4", 1, "Contact: <sip:alice@192.0.2.4>, <sip:alice@192.0.2.5>, <sip:alice@192.0.2.6>"),
					code: 200, reason: "OK",
					contacts: []string{"<sip:alice@192.0.2.5>;expires=3600", "<sip:alice@192.0.2.6>;expires=3600"},
				},
			},
		},
		{
			name: "past max_aors a new AOR gets 503, the AORs there go on",
			keys: "max_aors = 2",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{msg: request("REGISTER", "sip:example.org", "sip:bob@example.org", "b1", 1, "Contact: <sip:bob@192.0.2.7>"), code: 200, reason: "OK", contacts: []string{"<sip:bob@192.0.2.7>;expires=3600"}},
				{
					msg:  request("REGISTER", "sip:example.org", "sip:carol@example.org", "k1", 1, "Contact: <sip:carol@192.0.2.8>"),
					code: 503, reason: "Service Unavailable: location store full",
					headers: map[string]string{"Retry-After": "300"},
				},
				// Alice refreshes, adds a device, removes one.
				{at: time.Minute, msg: register("c1", 2, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{at: time.Minute, msg: register("c2", 1, "Contact: "+phone2), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600", phone2 + ";expires=3600"}},
				{at: time.Minute, msg: register("c2", 2, "Contact: "+phone2+";expires=0"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				// Carol may query and remove what she does not have.
				{msg: request("REGISTER", "sip:example.org", "sip:carol@example.org", "k1", 2), code: 200, reason: "OK"},
				{msg: request("REGISTER", "sip:example.org", "sip:carol@example.org", "k1", 3, "Contact: *", "Expires: 0"), code: 200, reason: "OK"},
				// Bob leaves: carol gets his place, then dave finds none.
				{msg: request("REGISTER", "sip:example.org", "sip:bob@example.org", "b1", 2, "Contact: *", "Expires: 0"), code: 200, reason: "OK"},
				{msg: request("REGISTER", "sip:example.org", "sip:carol@example.org", "k1", 4, "Contact: <sip:carol@192.0.2.8>"), code: 200, reason: "OK", contacts: []string{"<sip:carol@192.0.2.8>;expires=3600"}},
				{msg: request("REGISTER", "sip:example.org", "sip:dave@example.org", "d1", 1, "Contact: <sip:dave@192.0.2.9>"), code: 503, reason: "Service Unavailable: location store full", headers: map[string]string{"Retry-After": "300"}},
				// Alice leaves by letting her binding lapse: until the
				// store is swept, it may count her still.
				{
					at:   2 * time.Hour,
					msg:  request("REGISTER", "sip:example.org", "sip:dave@example.org", "d1", 2, "Contact: <sip:dave@192.0.2.9>"),
					code: 503, reason: "Service Unavailable: location store full", headers: map[string]string{"Retry-After": "300"},
				},
				{
					at: 2 * time.Hour, sweep: true,
					msg:  request("REGISTER", "sip:example.org", "sip:dave@example.org", "d1", 3, "Contact: <sip:dave@192.0.2.9>"),
					code: 200, reason: "OK", contacts: []string{"<sip:dave@192.0.2.9>;expires=3600"},
				},
			},
		},
		{
			name: "max_aors = 0 is no limit",
			keys: "max_aors = 0",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{msg: request("REGISTER", "sip:example.org", "sip:bob@example.org", "b1", 1, "Contact: <sip:bob@192.0.2.7>"), code: 200, reason: "OK", contacts: []string{"<sip:bob@192.0.2.7>;expires=3600"}},
			},
		},
		{
			name: "expires=0 removes one binding",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{msg: register("c2", 1, "Contact: "+phone2), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600", phone2 + ";expires=3600"}},
				{msg: register("c1", 2, "Contact: "+phone1+";expires=0"), code: 200, reason: "OK", contacts: []string{phone2 + ";expires=3600"}},
				{msg: register("c2", 2, "Contact: "+phone2, "Expires: 0"), code: 200, reason: "OK", contacts: nil},
				// Removing what is not there is fine.
				{msg: register("c2", 3, "Contact: "+phone2, "Expires: 0"), code: 200, reason: "OK", contacts: nil},
			},
		},
		{
			name: "Contact * with Expires: 0 removes every binding",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{msg: register("c2", 1, "Contact: "+phone2), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600", phone2 + ";expires=3600"}},
				{
					msg: register("c3", 1, "Contact: *", "Expires: 0"), code: 200, reason: "OK", contacts: nil,
					stored: func(bs []location.Binding) error {
						if len(bs) != 0 {
							return fmt.Errorf("bindings left: %+v", bs)
						}
						return nil
					},
				},
				{msg: register("c3", 2), code: 200, reason: "OK", contacts: nil},
			},
		},
		{
			name: "Contact * in the wrong form is refused and changes nothing",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{msg: register("c2", 1, "Contact: *"), code: 400, reason: "Bad Request: Contact * needs Expires: 0"},
				{msg: register("c2", 2, "Contact: *", "Expires: 3600"), code: 400, reason: "Bad Request: Contact * needs Expires: 0"},
				{msg: register("c2", 3, "Contact: *;expires=0"), code: 400, reason: "Bad Request: Contact * needs Expires: 0"},
				{msg: register("c2", 4, "Contact: *, "+phone2, "Expires: 0"), code: 400, reason: "Bad Request: Contact * must be the only Contact"},
				{msg: register("c2", 5, "Contact: "+phone2, "Contact: *", "Expires: 0"), code: 400, reason: "Bad Request: Contact * must be the only Contact"},
				{msg: register("c2", 6), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
			},
		},
		{
			name: "an interval below min_expires gets 423 with Min-Expires",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1, "Expires: 30"), code: 423, reason: "Interval Too Brief", headers: map[string]string{"Min-Expires": "60"}},
				// The contact's parameter wins over the header.
				{msg: register("c1", 2, "Contact: "+phone1+";expires=59", "Expires: 3600"), code: 423, reason: "Interval Too Brief", headers: map[string]string{"Min-Expires": "60"}},
				// One short contact refuses the whole request.
				{msg: register("c1", 3, "Contact: "+phone1, "Contact: "+phone2+";expires=10"), code: 423, reason: "Interval Too Brief"},
				{msg: register("c1", 4, "Contact: "+phone1+";expires=60"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=60"}},
				// 0 is always allowed.
				{msg: register("c1", 5, "Contact: "+phone1+";expires=0"), code: 200, reason: "OK", contacts: nil},
			},
		},
		{
			name: "min_expires setting",
			keys: `min_expires = "120s"`,
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1, "Expires: 119"), code: 423, reason: "Interval Too Brief", headers: map[string]string{"Min-Expires": "120"}},
			},
		},
		{
			name: "an interval above max_expires is cut to it",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1, "Expires: 999999"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=86400"}},
				{msg: register("c1", 2, "Contact: "+phone1+";expires=99999999999999999999"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=86400"}},
			},
		},
		{
			name: "max_expires and default_expires settings",
			keys: "max_expires = \"1h\"\ndefault_expires = \"30m\"",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=1800"}},
				{msg: register("c1", 2, "Contact: "+phone1, "Expires: 7200"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
			},
		},
		{
			name: "a CSeq not above the stored one for the same Call-ID is out of order",
			steps: []step{
				{msg: register("c1", 5, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{at: time.Minute, msg: register("c1", 5, "Contact: "+phone1, "Expires: 600"), code: 500, reason: "Server Internal Error: CSeq out of order"},
				{at: time.Minute, msg: register("c1", 4, "Contact: "+phone1+";expires=0"), code: 500, reason: "Server Internal Error: CSeq out of order"},
				{at: time.Minute, msg: register("c1", 4, "Contact: *", "Expires: 0"), code: 500, reason: "Server Internal Error: CSeq out of order"},
				// Nothing changed.
				{at: time.Minute, msg: register("c1", 4), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3540"}},
				// A later CSeq, or another Call-ID, is in order.
				{at: time.Minute, msg: register("c1", 6, "Contact: "+phone1, "Expires: 600"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=600"}},
				{at: time.Minute, msg: register("c9", 1, "Contact: "+phone1, "Expires: 900"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=900"}},
			},
		},
		{
			name: "a REGISTER without Contact is a query",
			steps: []step{
				{msg: register("q", 1), code: 200, reason: "OK", contacts: nil},
				{msg: register("c1", 1, "Contact: "+phone1), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"}},
				{msg: register("c2", 1, "Contact: "+phone2, "Expires: 120"), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600", phone2 + ";expires=120"}},
				{
					at: 100*time.Second + 500*time.Millisecond, msg: register("q", 2, "Expires: 0"),
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3500", phone2 + ";expires=20"},
					headers: map[string]string{"Date": "Sat, 01 Mar 2025 12:01:40 GMT"},
				},
				{at: 121 * time.Second, msg: register("q", 3), code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3479"}},
			},
		},
		{
			name: "a REGISTER for a domain that is not ours goes on",
			steps: []step{
				{
					msg:  request("REGISTER", "sip:other.net", "sip:alice@other.net", "c1", 1, "Contact: "+phone1),
					pass: true,
					stored: func(bs []location.Binding) error {
						if len(bs) != 0 {
							return fmt.Errorf("foreign REGISTER stored %+v", bs)
						}
						return nil
					},
				},
				// Sent to our socket, it is ours whatever the To domain.
				{
					msg:  request("REGISTER", "sip:127.0.0.1:5060", "sip:alice@other.net", "c1", 2, "Contact: "+phone1),
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"},
				},
				// Sent elsewhere but for one of our domains, it is ours too.
				{
					msg:  request("REGISTER", "sip:registrar.other.net", "sip:alice@example.org", "c1", 3, "Contact: "+phone1),
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"},
				},
			},
		},
		{
			name: "other methods go on",
			steps: []step{
				{msg: request("OPTIONS", "sip:example.org", "sip:alice@example.org", "o1", 1, "Contact: "+phone1), pass: true},
				{msg: request("INVITE", "sip:alice@example.org", "sip:alice@example.org", "i1", 1, "Contact: "+phone1), pass: true},
			},
		},
		{
			name: "the 200 is built: every binding with expires, no GRUU; Require: outbound for a flow",
			steps: []step{
				{
					msg: register("c1", 1,
						"Supported: path, outbound, gruu",
						`Contact: <sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:0001>";reg-id=1;q=0.5;expires=600`,
						"Allow: INVITE, ACK, BYE",
						"User-Agent: phone/1.0",
					),
					code: 200, reason: "OK",
					contacts: []string{`<sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:0001>";reg-id=1;q=0.5;expires=600`},
					headers:  map[string]string{"Require": "outbound", "Supported": "outbound"},
					stored: func(bs []location.Binding) error {
						if len(bs) != 1 || bs[0].Params != `+sip.instance="<urn:uuid:0001>";reg-id=1;q=0.5` || bs[0].Instance != "<urn:uuid:0001>" {
							return fmt.Errorf("params not stored as written: %+v", bs)
						}
						return nil
					},
				},
				{
					msg:  register("c2", 1, "Contact: "+phone2),
					code: 200, reason: "OK",
					contacts: []string{`<sip:alice@192.0.2.1:5060;ob>;+sip.instance="<urn:uuid:0001>";reg-id=1;q=0.5;expires=600`, phone2 + ";expires=3600"},
				},
			},
		},
		{
			name: "contacts as one header with commas and as several headers",
			steps: []step{{
				msg: register("c1", 1,
					`Contact: "Alice" <sip:alice@192.0.2.1:5060>, <sip:alice@192.0.2.1:5070>;expires=120`,
					"m: <sip:alice@192.0.2.1:5080>",
				),
				code: 200, reason: "OK",
				contacts: []string{
					"<sip:alice@192.0.2.1:5060>;expires=3600",
					"<sip:alice@192.0.2.1:5070>;expires=120",
					"<sip:alice@192.0.2.1:5080>;expires=3600",
				},
			}},
		},
		{
			name: "Path is stored and returned to a UA that supports it",
			steps: []step{
				{
					msg:  register("c1", 1, "Supported: path", "Path: <sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>", "Contact: "+phone1),
					code: 200, reason: "OK",
					contacts: []string{phone1 + ";expires=3600"},
					headers:  map[string]string{"Path": "<sip:edge1.example.net;lr>"},
					stored: func(bs []location.Binding) error {
						want := []string{"<sip:edge1.example.net;lr>", "<sip:edge2.example.net;lr>"}
						if len(bs) != 1 || !slices.Equal(bs[0].Path, want) {
							return fmt.Errorf("path = %+v, want %q", bs, want)
						}
						return nil
					},
				},
			},
		},
		{
			name: "malformed requests get 400 naming the problem",
			steps: []step{
				{msg: register("c1", 1, "Contact: "+phone1, "Expires: soon"), code: 400, reason: "Bad Request: malformed Expires header"},
				{msg: register("c1", 2, "Contact: "+phone1, "Expires: -5"), code: 400, reason: "Bad Request: malformed Expires header"},
				{msg: register("c1", 3, "Contact: "+phone1+";expires=abc"), code: 400, reason: "Bad Request: malformed expires parameter in Contact"},
				{msg: register("c1", 4, "Contact: "+phone1+";expires="), code: 400, reason: "Bad Request: malformed expires parameter in Contact"},
				{msg: register("c1", 5, "Contact: <tel:+15551234>"), code: 400, reason: "Bad Request: Contact is not a sip or sips URI with a host"},
				{
					msg: register("c1", 6),
					mutate: func(req *sip.Request) {
						req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@192.0.2.1"))
					},
					code: 400, reason: "Bad Request: malformed Contact header",
				},
				{msg: request("REGISTER", "sip:example.org", "sip:example.org", "c1", 7, "Contact: "+phone1), code: 404, reason: "Not Found: the To URI is not a user's address-of-record"},
				{msg: register("c1", 8, "Require: path, foo, bar", "Contact: "+phone1), code: 420, reason: "Bad Extension", headers: map[string]string{"Unsupported": "foo, bar"}},
				{
					msg: register("c1", 9, "Contact: "+phone1),
					stored: func(bs []location.Binding) error {
						if len(bs) != 1 || bs[0].CSeq != 9 {
							return fmt.Errorf("stored %+v after refusals, want one binding from CSeq 9", bs)
						}
						return nil
					},
					code: 200, reason: "OK", contacts: []string{phone1 + ";expires=3600"},
				},
			},
		},
		{
			name: "a generic Contact header with several values",
			steps: []step{{
				msg: register("c1", 1),
				mutate: func(req *sip.Request) {
					req.AppendHeader(sip.NewHeader("Contact", phone1+", "+phone2+";expires=100"))
				},
				code: 200, reason: "OK",
				contacts: []string{phone1 + ";expires=3600", phone2 + ";expires=100"},
			}},
		},
	}
	for i, tc := range tests {
		h, err := newRegistrar(t, tc.keys, location.NewMemory())
		if err != nil {
			t.Fatalf("test %d (%s): build: %v", i, tc.name, err)
		}
		for j, s := range tc.steps {
			where := fmt.Sprintf("test %d (%s): step %d", i, tc.name, j)
			if err := run(t, h, s); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
}

// run sends one step's request through the harness and checks the result.
func run(t *testing.T, h *stagetest.Harness, s step) error {
	req := stagetest.Request(t, s.msg)
	if s.mutate != nil {
		s.mutate(req)
	}
	src := s.src
	if src == "" {
		src = "192.0.2.1:5060"
	}
	at := t0.Add(s.at)
	if s.sweep {
		h.Location().Sweep(at)
	}
	r := h.Request(req, stagetest.From(src), stagetest.At(at))
	if r.Err != nil {
		return fmt.Errorf("ServeRequest: %v", r.Err)
	}
	if s.pass {
		if r.Verdict != pipeline.Continue || r.Made != nil {
			return fmt.Errorf("verdict %v with reply %v, want continue without a reply", r.Verdict, r.Made)
		}
	} else {
		if r.Verdict != pipeline.Replied || r.Reply == nil {
			return fmt.Errorf("verdict %v, want replied", r.Verdict)
		}
		if err := checkReply(r.Received, r.Reply, s); err != nil {
			return err
		}
	}
	if s.stored != nil {
		bs, _, err := h.Location().Lookup("alice", at)
		if err != nil {
			return err
		}
		if err := s.stored(bs); err != nil {
			return err
		}
	}
	return nil
}

func checkReply(req *sip.Request, res *sip.Response, s step) error {
	if res.StatusCode != s.code || res.Reason != s.reason {
		return fmt.Errorf("reply %d %q, want %d %q", res.StatusCode, res.Reason, s.code, s.reason)
	}
	var contacts []string
	for _, h := range res.GetHeaders("Contact") {
		contacts = append(contacts, h.Value())
	}
	if !slices.Equal(contacts, s.contacts) {
		return fmt.Errorf("contacts\n\t%q\nwant\n\t%q", contacts, s.contacts)
	}
	for name, want := range s.headers {
		h := res.GetHeader(name)
		if h == nil || h.Value() != want {
			return fmt.Errorf("header %s = %v, want %q", name, h, want)
		}
	}
	for _, name := range []string{"Supported", "Require", "Allow", "User-Agent", "Expires"} {
		if _, want := s.headers[name]; want {
			continue
		}
		if h := res.GetHeader(name); h != nil {
			return fmt.Errorf("reply has %s, which the registrar does not send", h)
		}
	}
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		return fmt.Errorf("reply To has no tag: %s", res.To())
	}
	if res.Via().Value() != req.Via().Value() || res.CallID().Value() != req.CallID().Value() || res.CSeq().Value() != req.CSeq().Value() {
		return fmt.Errorf("reply Via/Call-ID/CSeq differ from the request's:\n%s", res)
	}
	if res.StatusCode == 200 && res.GetHeader("Date") == nil {
		return fmt.Errorf("200 has no Date")
	}
	return nil
}

func TestConfig(t *testing.T) {
	tests := []struct {
		keys    string
		noStore bool
		wantErr string // "" for none
	}{
		{keys: ""},
		{keys: "default_expires = \"10m\"\nmin_expires = \"0s\"\nmax_expires = \"2h\"\nmax_contacts = 1"},
		{keys: `min_expires = "2d"`, wantErr: "min_expires"},
		{keys: `min_expires = "25h"`, wantErr: `min_expires: "25h0m0s" is longer than max_expires "24h0m0s"`},
		{keys: `default_expires = "30s"`, wantErr: "default_expires: \"30s\" is not between"},
		{keys: `default_expires = "90000s"`, wantErr: "default_expires"},
		{keys: `max_expires = "0s"`, wantErr: "max_expires"},
		{keys: `max_expires = 3600`, wantErr: "max_expires"},
		{keys: `default_expires = "1500ms"`, wantErr: "not a whole number of seconds"},
		{keys: `max_contacts = 0`, wantErr: "max_contacts: 0 is not a positive number"},
		{keys: `max_aors = 0`},
		{keys: `max_aors = 5`},
		{keys: `max_aors = -1`, wantErr: "test.toml:7:1: stage 1 (registrar): max_aors: -1 is negative (0 is no limit)"},
		{keys: `max_aors = "many"`, wantErr: "max_aors"},
		{keys: `expires = "1h"`, wantErr: "expires: unknown key"},
		{keys: "keepalive = \"2s\"\nkeepalive_timeout = \"6s\""},
		{keys: `keepalive = "0s"`},
		{keys: `keepalive = "10ms"`, wantErr: "keepalive: \"10ms\" is too short"},
		{keys: `keepalive_timeout = "20s"`, wantErr: "keepalive_timeout: \"20s\" is not longer than keepalive \"25s\""},
		{noStore: true, wantErr: "no location store"},
	}
	for i, tc := range tests {
		var store location.Store = location.NewMemory()
		if tc.noStore {
			store = nil
		}
		_, err := newRegistrar(t, tc.keys, store)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("test %d: %v", i, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("test %d: error %v, want one with %q", i, err, tc.wantErr)
		}
	}
}

// TestNotProvisioned checks that a stage without a store returns an error
// rather than answering.
func TestNotProvisioned(t *testing.T) {
	h := stagetest.Stage(t, "registrar", "")
	ctx := h.Context(stagetest.Request(t, register("c1", 1, "Contact: "+phone1)), stagetest.From("192.0.2.1:5060"))
	if _, err := New().ServeRequest(ctx); err == nil {
		t.Errorf("unprovisioned registrar did not fail")
	}
}

// TestMaxAORsConcurrent registers new AORs from many goroutines at once
// (run it with -race) on a store with room for fewer: the store may
// overshoot max_aors by at most the REGISTERs in flight, one per
// goroutine, and every AOR it holds got a 200.
func TestMaxAORsConcurrent(t *testing.T) {
	const (
		maxAORs    = 20
		goroutines = 8
		perWorker  = 10
	)
	store := location.NewMemory()
	h, err := newRegistrar(t, fmt.Sprintf("max_aors = %d", maxAORs), store)
	if err != nil {
		t.Fatal(err)
	}
	var reqs [goroutines][perWorker]*sip.Request
	for g := range goroutines {
		for i := range perWorker {
			user := fmt.Sprintf("u%d-%d", g, i)
			reqs[g][i] = stagetest.Request(t, request("REGISTER", "sip:example.org", "sip:"+user+"@example.org", user, 1, "Contact: <sip:"+user+"@192.0.2.1>"))
		}
	}
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i, req := range reqs[g] {
				user := fmt.Sprintf("u%d-%d", g, i)
				r := h.Request(req, stagetest.From("192.0.2.1:5060"), stagetest.At(t0))
				if r.Err != nil {
					t.Error(r.Err)
					return
				}
				switch code := r.Code(); code {
				case 200:
					ok.Add(1)
				case 503:
					full.Add(1)
				default:
					t.Errorf("%s: %d", user, code)
				}
			}
		})
	}
	wg.Wait()
	n, _ := store.AORs(t0)
	if int64(n) != ok.Load() || n < maxAORs || n > maxAORs+goroutines-1 {
		t.Errorf("%d AORs stored, %d REGISTERs got 200, %d got 503; want %d to %d AORs, one per 200", n, ok.Load(), full.Load(), maxAORs, maxAORs+goroutines-1)
	}
}
