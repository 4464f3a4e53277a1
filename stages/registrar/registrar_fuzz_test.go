package registrar

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
	_ "github.com/switchboard-sip/switchboard/stages/location"
)

// fuzzMaxContacts is max_contacts in FuzzRegistrar's chain.
const fuzzMaxContacts = 3

// fuzzChain is a registrar (with a small max_contacts) and the location
// stage that reads its bindings.
const fuzzChain = `[[stage]]
use          = "registrar"
min_expires  = "60s"
max_expires  = "7200s"
max_contacts = 3

[[stage]]
use = "location"
`

// fuzzRegister returns a REGISTER of alice@example.org with the given
// Contact and Expires header values; an empty value leaves the header out.
func fuzzRegister(cseq, contact, expires string) string {
	lines := []string{
		"REGISTER sip:example.org SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-fuzz-" + cseq,
		"Max-Forwards: 70",
		"From: <sip:alice@example.org>;tag=fuzz",
		"To: <sip:alice@example.org>",
		"Call-ID: fuzz@192.0.2.10",
		"CSeq: " + cseq + " REGISTER",
	}
	if contact != "" {
		lines = append(lines, "Contact: "+contact)
	}
	if expires != "" {
		lines = append(lines, "Expires: "+expires)
	}
	return strings.Join(append(lines, "Content-Length: 0", "", ""), "\r\n")
}

// FuzzRegistrar registers alice with any Contact and Expires header values
// through the registrar stage, then queries her bindings, calls her through
// the location stage, and unregisters the same contact. No step may panic
// or fail; every answer is one the registrar documents; an AOR never keeps
// more than max_contacts bindings, each with a lifetime within max_expires;
// the 200 lists exactly the bindings stored, and parses back.
func FuzzRegistrar(f *testing.F) {
	seeds := [][2]string{
		{"<sip:alice@192.0.2.10:5060>", "3600"},
		{"<sip:alice@192.0.2.10>;expires=0", ""},
		{"*", "0"},
		{"*", "3600"},
		{"<sip:alice@192.0.2.10>, <sip:alice@192.0.2.11>;q=0.5, <sip:alice@192.0.2.12>, <sip:alice@192.0.2.13>", "60"},
		{`"Alice" <sip:alice@192.0.2.10;transport=tcp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1`, "600"},
		{"sip:user@example.com?Route=%3Csip:sip.example.com%3E", ""},
		{"<sip:user@example.com?Route=%3Csip:sip.example.com%3E>", ""},
		{"<sip:+19725552222@gw1.example.net;unknownparam>", "4294967296"},
		{"sip:+19725552222@gw1.example.net;unknownparam", "99999999999999999999"},
		{"<sip:%00@host5.example.com>,<sip:%00%00@host5.example.com>", ""},
		{"<isbn:2983792873>", "1"},
		{"<sip:alice@[2001:db8::1]:5060>", "30"},
		{"<sip:alice@192.0.2.10>;expires=abc", ""},
		{"<sip:alice@192.0.2.10>;expires=", "0x10"},
		{"<sip:alice@192.0.2.10>;expires=59", "-1"},
		{"<sip:alice@192.0.2.10;lr;maddr=192.0.2.99>;pub-gruu=x;temp-gruu=y", " 3600 "},
		{"m: <sip:alice@192.0.2.10>", ""},
		{"<sip:alice:secret@192.0.2.10:5060;transport=TCP?Subject=hi&Priority=urgent>", "7200"},
		{"<sips:alice@alice-phone.example.org>", "86400"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	allowed := []int{200, 400, 404, 420, 423, 500}
	f.Fuzz(func(t *testing.T, contact, expires string) {
		if strings.ContainsAny(contact+expires, "\r\n") {
			return // another header, not a value of these
		}
		msg, err := sip.ParseMessage([]byte(fuzzRegister("1", contact, expires)))
		if err != nil {
			return
		}
		now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		h := stagetest.Chain(t, fuzzChain, stagetest.WithTime(func() time.Time { return now }))
		reg := msg.(*sip.Request)

		r := h.Request(reg)
		if r.Err != nil {
			t.Fatalf("REGISTER: the stage failed: %v\n%s", r.Err, reg)
		}
		if r.Verdict != pipeline.Replied || !slices.Contains(allowed, r.Code()) {
			t.Fatalf("REGISTER: verdict %v, code %d, want a reply in %v\n%s", r.Verdict, r.Code(), allowed, reg)
		}
		bindings, _, err := h.Location().Lookup("alice", now)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code() != 200 && len(bindings) > 0 {
			t.Fatalf("REGISTER answered %d but left %d bindings\n%s", r.Code(), len(bindings), reg)
		}
		for _, b := range bindings {
			if !fuzzValidURI(b.Contact) {
				// sipgo's parser accepts Contact URIs that are not URIs
				// (<sip:*;>, sip:*>0, sip:*>@0); the registrar must refuse
				// them rather than bind them (the seeds keep these cases).
				t.Fatalf("contact %q bound as %q, not a valid SIP URI\n%s", contact, b.Contact, reg)
			}
		}
		if len(bindings) > fuzzMaxContacts {
			t.Fatalf("%d bindings, past max_contacts %d\n%s", len(bindings), fuzzMaxContacts, reg)
		}
		for _, b := range bindings {
			if left := b.Expires.Sub(now); left <= 0 || left > 7200*time.Second {
				t.Fatalf("binding %s lives %v, want within (0, 7200s]\n%s", b.Contact, left, reg)
			}
		}
		if r.Code() == 200 {
			fuzzExpectContacts(t, r.Reply, len(bindings), reg)
		}

		// The bindings read back: a query lists them, a call reaches them.
		q := h.Request(stagetest.Request(t, fuzzRegister("2", "", "")))
		if q.Err != nil || q.Code() != 200 {
			t.Fatalf("query: code %d, error %v, want 200\nafter:\n%s", q.Code(), q.Err, reg)
		}
		fuzzExpectContacts(t, q.Reply, len(bindings), reg)
		call := h.Request(stagetest.Request(t, `INVITE sip:alice@example.org SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-fuzz-call
Max-Forwards: 70
From: <sip:bob@example.org>;tag=b
To: <sip:alice@example.org>
Call-ID: fuzz-call@192.0.2.20
CSeq: 1 INVITE
Contact: <sip:bob@192.0.2.20>
`))
		switch {
		case call.Err != nil:
			t.Fatalf("call: the location stage failed: %v\nafter:\n%s", call.Err, reg)
		case call.Verdict == pipeline.Continue && len(call.Targets) > len(bindings):
			t.Fatalf("call: %d targets for %d bindings\nafter:\n%s", len(call.Targets), len(bindings), reg)
		case call.Verdict == pipeline.Replied && call.Code() != 404 && call.Code() != 480:
			t.Fatalf("call: %d, want targets, 404 or 480\nafter:\n%s", call.Code(), reg)
		}

		// Unregistering the same contact.
		if contact != "" && !strings.HasPrefix(strings.TrimSpace(contact), "*") {
			if m, err := sip.ParseMessage([]byte(fuzzRegister("3", contact, "0"))); err == nil {
				un := h.Request(m.(*sip.Request))
				if un.Err != nil || !slices.Contains(allowed, un.Code()) {
					t.Fatalf("unregister: code %d, error %v\n%s", un.Code(), un.Err, m)
				}
			}
		}
	})
}

// fuzzURIChars are the characters of a SIP URI (RFC 3261 25.1: alphanum,
// mark, reserved, "%" of escapes, "[]" of IPv6 references).
const fuzzURIChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'();/?:@&=+$,%[]"

// fuzzValidURI reports whether a bound Contact is made of URI characters
// only and has a host that can be one (not "*").
func fuzzValidURI(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune(fuzzURIChars, c) {
			return false
		}
	}
	var u sip.Uri
	return sip.ParseUri(s, &u) == nil && !u.Wildcard && !strings.Contains(u.Host, "*")
}

// fuzzExpectContacts checks that a 200 from the registrar lists n contacts,
// each with an expires parameter, and parses back.
func fuzzExpectContacts(t *testing.T, res *sip.Response, n int, req *sip.Request) {
	t.Helper()
	text := res.String()
	back, err := sip.ParseMessage([]byte(text))
	if err != nil {
		t.Fatalf("the 200 does not parse back (%v):\n%s\nrequest:\n%s", err, text, req)
	}
	got := 0
	for _, h := range back.(*sip.Response).GetHeaders("Contact") {
		values := splitList(h.Value())
		got += len(values)
		for _, v := range values {
			if !strings.Contains(strings.ToLower(v), "expires=") {
				t.Fatalf("a Contact of the 200 has no expires: %q\n%s", v, text)
			}
		}
	}
	if got != n {
		t.Fatalf("the 200 lists %d contacts, %d are bound:\n%s\nrequest:\n%s", got, n, text, req)
	}
}
