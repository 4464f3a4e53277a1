package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCallForward runs the proxy with the callforward stage in place of
// location, sets bob's forwarding with `switchboard ctl forward`, sees it
// in `ctl forwarding`, and calls bob with SIPp: the call reaches carol
// when bob is busy, rings too long, has no binding, or forwards every
// call; the call record names the forward and the branches tried.
// Loops, redirects and q-value order are in the engine's
// TestCoreCallForward.
func TestCallForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// bob is bob's scenario ("" for no binding) and its arguments.
		bob     string
		bobArgs []string
		forward []string
		want    string
	}{
		{name: "busy", bob: "uas_reject.xml", bobArgs: []string{"-key", "reject_code", "486"},
			forward: []string{"busy=carol"}, want: "carol"},
		{name: "no answer", bob: "uas_ring.xml",
			forward: []string{"no_answer=carol", "no_answer_after=1"}, want: "1s"},
		{name: "unavailable", forward: []string{"unavailable=carol"}, want: "carol"},
		{name: "unconditional", bob: "uas.xml", forward: []string{"unconditional=carol"}, want: "carol"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := strings.Replace(testConfig("use = \"calllog\"\ncdr_path = \"cdr.json\"\ncdr_format = \"json\""), `use = "location"`, `use = "callforward"`, 1)
			p := startProxy(t, cfg)
			var bob *sippRun
			if tc.bob != "" {
				bob = startPhone(t, tc.bob, calleeIP, "udp", tc.bobArgs...)
				registerPhone(t, p, "bob", bob)
			}
			carol := startPhone(t, "uas.xml", calleeIP, "udp")
			registerPhone(t, p, "carol", carol)
			mustContain(t, "ctl forward", ctlOK(t, p, append([]string{"forward", "bob"}, tc.forward...)...), "bob", tc.want)
			mustContain(t, "ctl forwarding", ctlOK(t, p, "forwarding"), "UNCONDITIONAL", "bob", tc.want)

			caller := callFrom(t, p, "uac.xml", "udp", "-s", "bob")
			caller.ExpectCalls(1)
			carol.ExpectCalls(1)
			switch {
			case tc.name == "unconditional":
				bob.expectNothingReceived()
			case bob != nil:
				bob.ExpectCalls(1)
			}
			if !p.logSays(`msg="call forwarded"`, 5e9) {
				t.Error("the log has no \"call forwarded\" line")
			}
			// The call's record says where it went.
			kind := strings.ReplaceAll(tc.name, " ", "_")
			cdrPath := filepath.Join(filepath.Dir(p.ConfigPath), "cdr.json")
			waitFile(t, cdrPath, `"forwarded_from":"bob"`)
			data, _ := os.ReadFile(cdrPath)
			cdr := string(data)
			mustContain(t, "cdr.json", cdr, `"forwards":[{"kind":"`+kind+`","from":"bob","to":"carol"}]`, `"attempts":[`, `"code":200}]`)

		})
	}
}

// forwardConfig is testConfig with the callforward stage, with keys, in
// place of location.
func forwardConfig(keys string) string {
	return strings.Replace(testConfig(), `use = "location"`, "use = \"callforward\"\n"+keys, 1)
}

// TestCallForwardLoop forwards bob to carol and carol to bob on busy: each
// rings once, the loop is stopped, and the caller gets the 486.
func TestCallForwardLoop(t *testing.T) {
	t.Parallel()
	p := startProxy(t, forwardConfig(""))
	bob := startPhone(t, "uas_reject.xml", calleeIP, "udp", "-key", "reject_code", "486")
	registerPhone(t, p, "bob", bob)
	carol := startPhone(t, "uas_reject.xml", calleeIP, "udp", "-key", "reject_code", "486")
	registerPhone(t, p, "carol", carol)
	ctlOK(t, p, "forward", "bob", "busy=carol")
	ctlOK(t, p, "forward", "carol", "busy=bob")

	caller := callFrom(t, p, "uac_reject.xml", "udp", "-s", "bob", "-key", "reject_code", "486")
	caller.ExpectCalls(1)
	bob.ExpectCalls(1)
	carol.ExpectCalls(1)
	bob.expectOneInvite()
	carol.expectOneInvite()
	if !p.logSays("the user is already in the call's forwarding chain", 5e9) {
		t.Error("the log does not say why the loop stopped")
	}
}

// TestCallRedirect has bob answer 302 to carol: the caller gets the 302
// by default; with follow_redirects the proxy calls carol itself.
func TestCallRedirect(t *testing.T) {
	t.Parallel()
	for _, follow := range []bool{false, true} {
		t.Run(map[bool]string{false: "relayed", true: "followed"}[follow], func(t *testing.T) {
			t.Parallel()
			keys := ""
			if follow {
				keys = "follow_redirects = 1"
			}
			p := startProxy(t, forwardConfig(keys))
			carol := startPhone(t, "uas.xml", calleeIP, "udp")
			bob := startPhone(t, "uas_redirect.xml", calleeIP, "udp", "-key", "redirect_to", "sip:carol@"+carol.Addr())
			registerPhone(t, p, "bob", bob)

			if follow {
				caller := callFrom(t, p, "uac.xml", "udp", "-s", "bob")
				caller.ExpectCalls(1)
				carol.ExpectCalls(1)
			} else {
				caller := callFrom(t, p, "uac_reject.xml", "udp", "-s", "bob", "-key", "reject_code", "302")
				caller.ExpectCalls(1)
				carol.expectNothingReceived()
			}
			bob.ExpectCalls(1)
		})
	}
}

// TestCallSerialForking registers three devices for bob, q 1.0, 0.5 and
// 0.5, with serial forking on: the first rings alone and answers 480,
// then the two others ring together; one answers, the other is
// cancelled.
func TestCallSerialForking(t *testing.T) {
	t.Parallel()
	p := startProxy(t, forwardConfig("serial = true"))
	first := startPhone(t, "uas_reject.xml", calleeIP, "udp", "-key", "reject_code", "480")
	ringing := startPhone(t, "uas_ring.xml", calleeIP, "udp")
	answering := startPhone(t, "uas.xml", calleeIP, "udp")
	for _, d := range []struct {
		r *sippRun
		q string
	}{{first, "1.0"}, {ringing, "0.5"}, {answering, "0.5"}} {
		r := runSipp(t, p.UDP, "-sf", scenario(t, "register.xml"), "-i", d.r.IP, "-s", "bob",
			"-key", "contact_port", strconv.Itoa(d.r.Port), "-set", "contact_header_params", ";q="+d.q)
		r.ExpectCalls(1)
	}

	caller := callFrom(t, p, "uac.xml", "udp", "-s", "bob")
	caller.ExpectCalls(1)
	first.ExpectCalls(1)
	ringing.ExpectCalls(1)
	answering.ExpectCalls(1)
	if !p.logSays(`msg="serial forking: ringing the next q-value" aor=bob code=480`, 5e9) {
		t.Error("the log does not show the next q-value rung after the first device's 480")
	}
}
