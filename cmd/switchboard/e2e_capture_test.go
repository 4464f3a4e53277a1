package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTool fails the test when a tool is missing under CI, and skips
// it elsewhere; make test-deps installs the Debian package pkg.
func requireTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (Debian package %s): make test-deps installs it", tool, pkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// captured is one SIP message as tshark read it from a pcap file.
type captured struct {
	src, dst, what, callID string
}

// tsharkSIP reads the SIP messages of a pcap file: addresses, the method
// or status code with the CSeq method, and the Call-ID.
func tsharkSIP(t *testing.T, file string) []captured {
	t.Helper()
	out, err := exec.Command("tshark", "-r", file, "-Y", "sip", "-T", "fields", "-E", "separator=|",
		"-e", "ip.src", "-e", "udp.srcport", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "udp.dstport", "-e", "tcp.dstport",
		"-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method", "-e", "sip.Call-ID").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	var got []captured
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 10 {
			continue
		}
		what := f[6]
		if f[7] != "" {
			what = f[7] + " " + f[8]
		}
		got = append(got, captured{src: f[0] + ":" + f[1] + f[2], dst: f[3] + ":" + f[4] + f[5], what: what, callID: f[9]})
	}
	return got
}

// callMessages is every message of one call through the proxy between a
// caller on UDP and a callee on TCP, with where it went: from (caller to
// the proxy's UDP socket, or callee to the proxy's TCP side) and to.
func callMessages(caller, proxyUDP, callee string) []captured {
	in := func(what string) []captured {
		return []captured{{src: caller, dst: proxyUDP, what: what}, {src: "proxy", dst: callee, what: what}}
	}
	back := func(what string) []captured {
		return []captured{{src: callee, dst: "proxy", what: what}, {src: proxyUDP, dst: caller, what: what}}
	}
	var m []captured
	m = append(m, in("INVITE")...)
	m = append(m, captured{src: proxyUDP, dst: caller, what: "100 INVITE"})
	m = append(m, back("180 INVITE")...)
	m = append(m, back("200 INVITE")...)
	m = append(m, in("ACK")...)
	m = append(m, in("BYE")...)
	m = append(m, back("200 BYE")...)
	return m
}

// missing returns the messages of want that got lacks; "proxy" in want
// matches the proxy's TCP side, at proxyIP on any port.
func missing(want, got []captured) []captured {
	var out []captured
	for _, w := range want {
		found := false
		for _, g := range got {
			same := func(w, g string) bool {
				return w == g || (w == "proxy" && strings.HasPrefix(g, proxyIP+":"))
			}
			if g.what == w.what && same(w.src, g.src) && same(w.dst, g.dst) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// TestCaptureCall places a call from a UDP phone to a TCP phone through
// the real binary with [capture] on. sngrep, listening for HEP with the
// auth key as its password, writes what it receives to a pcap file, and
// tshark must find every message of the call in it with the right
// addresses and ports. The call's own pcap file (the message trace is on)
// must read the same.
func TestCaptureCall(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	sngrep := requireTool(t, "sngrep", "sngrep")
	requireTool(t, "tshark", "tshark")

	dir := t.TempDir()
	hepPort := freePort(t, "udp", proxyIP)
	rc := filepath.Join(dir, "sngreprc")
	if err := os.WriteFile(rc, []byte("set eep.listen.pass hep-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hepPcap := filepath.Join(dir, "hep.pcap")
	sng := exec.Command(sngrep, "-f", rc, "-N", "-q", "-L", fmt.Sprintf("udp:%s:%d", proxyIP, hepPort), "-O", hepPcap)
	sngOut := &syncBuffer{}
	sng.Stdout, sng.Stderr = sngOut, sngOut
	if err := sng.Start(); err != nil {
		t.Fatal(err)
	}
	sngDone := make(chan struct{})
	go func() { _ = sng.Wait(); close(sngDone) }()
	t.Cleanup(func() {
		_ = sng.Process.Signal(syscall.SIGTERM)
		select {
		case <-sngDone:
		case <-time.After(stopTimeout):
			_ = sng.Process.Kill()
			<-sngDone
		}
	})

	pcaps := filepath.Join(dir, "calls")
	// The message trace covers the call, not the REGISTER: the call gets
	// a pcap file.
	config := strings.Replace(testConfig(), "[log]\n", "[log]\ntrace_messages = true\ntrace_when = 'cseq.method != \"REGISTER\"'\n", 1)
	p := startProxy(t, config+fmt.Sprintf(`
[capture]
address = "udp://%s:%d"
capture_id = 2001
auth_key = "hep-secret"
when = 'cseq.method != "REGISTER"'
pcap = true
pcap_dir = %q
`, proxyIP, hepPort, pcaps))
	if !strings.Contains(readFile(t, p.ConfigPath), "trace_messages = true") {
		t.Fatal("testConfig has no [log] section to turn the message trace on in")
	}

	callee := startPhone(t, "uas.xml", calleeIP, "tcp")
	registerPhone(t, p, "bob", callee)
	caller := callFrom(t, p, "uac.xml", "udp", "-s", "bob")
	caller.ExpectCalls(1)
	callee.ExpectCalls(1)

	want := callMessages(caller.Addr(), p.UDP, callee.Addr())
	var got []captured
	deadline := time.Now().Add(readyTimeout)
	for {
		got = tsharkSIP(t, hepPcap)
		if len(missing(want, got)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sngrep's pcap lacks %v\nit has %v\nsngrep: %s", missing(want, got), got, sngOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, g := range got {
		if strings.Contains(g.what, "REGISTER") {
			t.Errorf("the when rule let through %v", g)
		}
	}

	// The call's pcap file: one file per traced call, named by its Call-ID.
	files, _ := filepath.Glob(filepath.Join(pcaps, "*.pcap"))
	if len(files) != 1 {
		t.Fatalf("pcap files %q, want the call's alone (the REGISTER is not traced)", files)
	}
	deadline = time.Now().Add(readyTimeout)
	for {
		got = tsharkSIP(t, files[0])
		if len(missing(want, got)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lacks %v\nit has %v", files[0], missing(want, got), got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if id := got[0].callID; filepath.Base(files[0]) != id+".pcap" {
		t.Errorf("file %s for Call-ID %s", files[0], id)
	}

	// sngrep reads the call's file too: what it writes back out, tshark
	// reads as the whole call.
	again := filepath.Join(dir, "again.pcap")
	if out, err := exec.Command(sngrep, "-F", "-I", files[0], "-N", "-q", "-O", again).CombinedOutput(); err != nil {
		t.Fatalf("sngrep -I %s: %v\n%s", files[0], err, out)
	}
	if lack := missing(want, tsharkSIP(t, again)); len(lack) > 0 {
		t.Errorf("sngrep read from %s lacks %v", files[0], lack)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
