package main

// The end-to-end test of hot reload (issue 4): a steady stream of calls
// through a proxy whose config file is rewritten 20 times under it,
// alternating good and broken versions, written in place, saved by rename
// and removed then recreated. No call and no registration may be lost, a
// broken version must change nothing, and a good one must take effect: the
// rewrite stage sets the reason phrase of every 200, and a probe call after
// each good reload checks the phrase it now gets.
//
// The callees play uas.xml, which wants the ACK before the BYE: the proxy
// relays the messages of a call in order, across reloads too.
//
// Addresses: the load's caller is on 127.0.0.2 and its callee (user bob) on
// 127.0.0.3; the probe callee (user probe, and the extra users) on
// 127.0.0.4; the probe callers on 127.0.0.5.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reloadProbeIP is the address of the probe callers.
const reloadProbeIP = "127.0.0.5"

const (
	// reloadRate and reloadCalls are the load: 20 calls/s for 30 s.
	reloadRate  = 20
	reloadCalls = 600
	// reloadRinging and reloadTalk are how long each call rings (the
	// callee's -d) and lasts (the caller's -d), in milliseconds: the calls
	// overlap, so that a reload finds some of them in setup and some up.
	reloadRinging = "50"
	reloadTalk    = "100"
	// reloadEdits is how many times the config is rewritten during the
	// load, every reloadEditEvery (a pace, so that the edits spread over
	// the load rather than all fall in its first seconds).
	reloadEdits     = 20
	reloadEditEvery = 1200 * time.Millisecond
	// reloadExtraUsers is how many more users register, besides bob and
	// probe, to check that no registration is lost.
	reloadExtraUsers = 20
	// reloadCallBatch is how many of the final calls to the extra users
	// run at once.
	reloadCallBatch = 5
	// reloadOutcomeTimeout bounds the wait for a reload's logged outcome
	// after an edit (the watcher waits 150 ms after the last event).
	reloadOutcomeTimeout = 10 * time.Second
)

// The reason phrases the good versions set, in turn; the proxy starts with
// the second one.
var reloadReasons = [2]string{"OK", "OK THANKS"}

// reloadConfig is the test proxy's config with a rewrite stage (stage 5)
// that sets the reason phrase of 200 responses.
func reloadConfig(reason string) string {
	return testConfig(fmt.Sprintf("use    = \"rewrite\"\nwhen   = 'response.code == 200'\nreason = %q", reason))
}

// reloadBroken are the kinds of broken version: a good config with old
// replaced by new (the empty file: nothing), and a fragment of the error the
// reload must log.
var reloadBroken = []struct {
	name, old, new, error string
}{
	{"toml syntax error", "[server]", "[server", "config.toml:1:8: toml: expected character ]"},
	{"unknown key", "domains =", "domain =", "config.toml:2:1: server: domain: unknown key, did you mean"},
	{"unknown stage", `use    = "rewrite"`, `use    = "rewrte"`, "config.toml:21:1: stage 5 (rewrte): use: unknown stage type"},
	{"rule does not compile", "'response.code == 200'", "'respons.code == 200'", "config.toml:22:1: stage 5 (rewrite): when: unknown name respons"},
	{"rule of the wrong type", "'response.code == 200'", "'response.code'", "config.toml:22:1: stage 5 (rewrite): when: expected bool, but got int"},
	{"empty file", "", "", "config.toml: the file is empty"},
}

// reloadBreak makes the broken version i (cycling through reloadBroken) of
// a good config, and returns it with its kind and the error it must log.
func reloadBreak(t *testing.T, i int, good string) (content, kind, wantError string) {
	t.Helper()
	b := reloadBroken[i%len(reloadBroken)]
	if b.old == "" {
		return "", b.name, b.error
	}
	if !strings.Contains(good, b.old) {
		t.Fatalf("broken version %q: the good config has no %q:\n%s", b.name, b.old, good)
	}
	return strings.Replace(good, b.old, b.new, 1), b.name, b.error
}

// reloadWrites are the ways an edit is saved, in turn.
var reloadWrites = []struct {
	name  string
	write func(path string, data []byte) error
}{
	{"in-place write", func(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }},
	{"rename-on-save", reloadRenameOver},
	{"rm + recreate", func(path string, data []byte) error {
		if err := os.Remove(path); err != nil {
			return err
		}
		return os.WriteFile(path, data, 0o644)
	}},
}

// reloadRenameOver saves as editors do: a new file in the same directory,
// renamed over the old one.
func reloadRenameOver(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".config.toml.*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	start := time.Now()
	reason := reloadReasons[1]
	good := reloadConfig(reason)
	p := startProxyWatch(t, good, true)
	running := reloadShortHash(good)

	// The load's callee, and the probe callee that every other user
	// reaches: bob, probe, and the extra users bound to it.
	probeCalls := 1 + reloadEdits/2 + reloadExtraUsers
	callee := startPhone(t, "uas.xml", calleeIP, "udp", "-d", reloadRinging, "-m", strconv.Itoa(reloadCalls), "-timeout", "90s")
	probe := startPhone(t, "uas.xml", callee2IP, "udp", "-d", reloadRinging, "-m", strconv.Itoa(probeCalls), "-timeout", "90s")
	registerPhone(t, p, "bob", callee)
	registerPhone(t, p, "probe", probe)
	var users []string
	var regs []*sippRun
	for i := 1; i <= reloadExtraUsers; i++ {
		user := fmt.Sprintf("r%02d", i)
		users = append(users, user)
		regs = append(regs, runSipp(t, p.UDP, "-sf", scenario(t, "register.xml"), "-i", callee2IP,
			"-s", user, "-key", "contact_port", strconv.Itoa(probe.Port)))
	}
	for _, r := range regs {
		r.ExpectCalls(1)
	}
	if t.Failed() {
		t.FailNow()
	}
	reloadProbe(t, p, "probe", reason)
	setup := time.Since(start)

	loadStart := time.Now()
	load := runSipp(t, p.UDP, "-sf", scenario(t, "uac.xml"), "-i", callerIP, "-s", "bob", "-d", reloadTalk,
		"-r", strconv.Itoa(reloadRate), "-m", strconv.Itoa(reloadCalls), "-timeout", "75s")

	var timings []string
	for i := 0; i < reloadEdits; i++ {
		// Pace the edits over the load. This only schedules an edit:
		// what follows it waits for the logged outcome.
		time.Sleep(time.Until(loadStart.Add(time.Duration(i+1) * reloadEditEvery)))
		select {
		case <-load.done:
			t.Fatalf("edit %d: the load ended before it (exit code %d)\n%s", i+1, load.Wait(), load.Report())
		default:
		}

		w := reloadWrites[i%len(reloadWrites)]
		var content, what, wantError string
		if i%2 == 0 {
			if reason == reloadReasons[0] {
				reason = reloadReasons[1]
			} else {
				reason = reloadReasons[0]
			}
			good = reloadConfig(reason)
			content, what = good, fmt.Sprintf("good (reason %q)", reason)
		} else {
			var kind string
			content, kind, wantError = reloadBreak(t, i/2, good)
			what = "broken: " + kind
		}
		offset := p.log.reloadLen()
		edited := time.Now()
		if err := w.write(p.ConfigPath, []byte(content)); err != nil {
			t.Fatalf("edit %d (%s, %s): %v", i+1, what, w.name, err)
		}
		out := reloadWaitOutcome(t, p, offset)
		took := time.Since(edited)
		label := fmt.Sprintf("edit %d (%s, %s)", i+1, what, w.name)
		timings = append(timings, fmt.Sprintf("%s at %.1fs: %s in %v", label, edited.Sub(loadStart).Seconds(), out.Result, took.Round(time.Millisecond)))

		if wantError == "" {
			if out.Result != "applied" || out.Hash != reloadShortHash(content) {
				t.Fatalf("%s: reload outcome %q hash %q, want applied with hash %s:\n%s",
					label, out.Result, out.Hash, reloadShortHash(content), p.log.reloadSince(offset))
			}
			running = out.Hash
			reloadProbe(t, p, "probe", reason)
			continue
		}
		if out.Result != "failed" || out.Running != running {
			t.Fatalf("%s: reload outcome %q running %q, want failed with %s still running:\n%s",
				label, out.Result, out.Running, running, p.log.reloadSince(offset))
		}
		if !strings.Contains(out.Errors, wantError) {
			t.Errorf("%s: the reload's errors do not say %q:\n%s", label, wantError, out.Errors)
		}
	}
	editsDone := time.Since(loadStart)
	select {
	case <-load.done:
		t.Errorf("the load ended before the last edit was checked: the edits were not all under load")
	default:
	}

	load.ExpectCalls(reloadCalls)
	callee.ExpectCalls(reloadCalls)
	loadDone := time.Since(loadStart)

	// Every registration is still there: a call to each extra user reaches
	// the probe callee (a lost one would get 404 or 480 and fail). The
	// calls go reloadCallBatch at a time.
	for i := 0; i < len(users); i += reloadCallBatch {
		var calls []*sippRun
		for _, user := range users[i:min(i+reloadCallBatch, len(users))] {
			calls = append(calls, reloadCall(t, p, user))
		}
		for _, c := range calls {
			c.ExpectCalls(1)
		}
	}
	probe.ExpectCalls(probeCalls)

	// Every outcome logged is one of the edits'. (The proxy's stop, when
	// the test ends, fails it on a panic or a data race in the log.)
	if n := len(reloadOutcomeLine.FindAllString(p.log.String(), -1)); n != reloadEdits {
		t.Errorf("the proxy logged %d reload outcomes, want %d (one per edit)", n, reloadEdits)
	}

	reasons := map[string]int{}
	for _, m := range load.Received("SIP/2.0 200 ") {
		if strings.HasSuffix(m.Header("CSeq"), "INVITE") {
			reasons[strings.TrimPrefix(m.FirstLine(), "SIP/2.0 200 ")]++
		}
	}
	t.Logf("setup %v; %d edits done %.1fs into the load; load of %d calls at %d/s done after %.1fs; total %.1fs; "+
		"reason phrases of the load's 200s to INVITE: %v; BYE before ACK at the callee: %d calls\n%s",
		setup.Round(time.Millisecond), reloadEdits, editsDone.Seconds(), reloadCalls, reloadRate, loadDone.Seconds(),
		time.Since(start).Seconds(), reasons, reloadByeFirst(callee), strings.Join(timings, "\n"))
}

// reloadByeFirst counts the calls whose BYE the run received before their
// ACK.
func reloadByeFirst(r *sippRun) int {
	first := map[string]string{}
	for _, m := range r.Messages() {
		if m.Direction != "received" || !(m.IsRequest("ACK") || m.IsRequest("BYE")) {
			continue
		}
		if id := m.Header("Call-ID"); first[id] == "" {
			first[id] = strings.Fields(m.FirstLine())[0]
		}
	}
	n := 0
	for _, method := range first {
		if method == "BYE" {
			n++
		}
	}
	return n
}

// reloadShortHash is the config hash a reload logs: the first 12 hex digits
// of the SHA-256 of the file.
func reloadShortHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])[:12]
}

// reloadCall starts one call to user from the probe address. The call
// lasts as long as the load's do.
func reloadCall(t *testing.T, p *proxy, user string) *sippRun {
	t.Helper()
	return runSipp(t, p.UDP, "-sf", scenario(t, "uac.xml"), "-i", reloadProbeIP, "-s", user, "-d", reloadTalk)
}

// reloadProbe places one call to user from the probe address and fails the
// test unless it succeeds and every 200 it gets (to the INVITE and to the
// BYE) carries the reason phrase reason.
func reloadProbe(t *testing.T, p *proxy, user, reason string) {
	t.Helper()
	r := reloadCall(t, p, user)
	r.ExpectCalls(1)
	oks := r.Received("SIP/2.0 200")
	if len(oks) == 0 {
		t.Errorf("probe call: no 200 received\n%s", r.Report())
	}
	for _, m := range oks {
		if got := strings.TrimPrefix(m.FirstLine(), "SIP/2.0 200 "); got != reason {
			t.Errorf("probe call: the 200 to %s has reason phrase %q, want %q\n%s", m.Header("CSeq"), got, reason, r.Report())
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// reloadOutcomeLine matches the line that ends a reload.
var reloadOutcomeLine = regexp.MustCompile(`(?m)^.*\bmsg=reload outcome=(\w+)\b.*\n`)

var (
	reloadHashField    = regexp.MustCompile(`\bhash="?([0-9a-f]*)`)
	reloadRunningField = regexp.MustCompile(`\brunning=([0-9a-f]*)`)
)

// reloadOutcome is a reload's logged outcome.
type reloadOutcome struct {
	Result  string // applied, unchanged or failed
	Hash    string // the config's short hash ("" when the file did not decode)
	Running string // after a failure, the hash of the config still in force
	Errors  string // the "reload error" lines logged before it
}

// reloadWaitOutcome waits for the first reload outcome the proxy logs after
// offset, for at most reloadOutcomeTimeout.
func reloadWaitOutcome(t *testing.T, p *proxy, offset int) reloadOutcome {
	t.Helper()
	deadline := time.Now().Add(reloadOutcomeTimeout)
	for {
		log := p.log.reloadSince(offset)
		if loc := reloadOutcomeLine.FindStringSubmatchIndex(log); loc != nil {
			line := log[loc[0]:loc[1]]
			out := reloadOutcome{Result: log[loc[2]:loc[3]]}
			if m := reloadHashField.FindStringSubmatch(line); m != nil {
				out.Hash = m[1]
			}
			if m := reloadRunningField.FindStringSubmatch(line); m != nil {
				out.Running = m[1]
			}
			var errs []string
			for _, l := range strings.Split(log[:loc[0]], "\n") {
				if strings.Contains(l, `msg="reload error"`) {
					errs = append(errs, l)
				}
			}
			out.Errors = strings.Join(errs, "\n")
			return out
		}
		select {
		case <-p.done:
			t.Fatalf("switchboard exited while a reload was awaited: %v", p.waitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload outcome in the proxy's log %v after the edit:\n%s", reloadOutcomeTimeout, log)
		}
	}
}

// reloadLen is how many bytes were written so far.
func (b *syncBuffer) reloadLen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// reloadSince returns what was written after the first offset bytes.
func (b *syncBuffer) reloadSince(offset int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[offset:])
}
