package calllog

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/pipeline/stagetest"
)

// seedDir holds the seed's call logs and captures (copies of
// ../shared/seed/scenarN.log and scenarN.messages.txt).
const seedDir = "testdata/seed"

// frame is one captured message of a seed scenario.
type frame struct {
	n        int
	at       time.Time
	src, dst string // the endpoint's name ("PROXY", "pocophone"), else its address
	msg      sip.Message
}

var frameLine = regexp.MustCompile(`^===== frame (\d+) t=\+[\d.]+s \(epoch (\d+)\.(\d+)\) iface \d+ (\S+)(?: \(([^)]*)\))? -> (\S+)(?: \(([^)]*)\))? len=\d+ =====$`)

// loadFrames parses scenarN.messages.txt.
func loadFrames(t *testing.T, path string) []frame {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []frame
	var cur *frame
	var text []string
	flush := func() {
		if cur != nil {
			cur.msg = stagetest.Message(t, strings.Join(text, "\n"))
			frames = append(frames, *cur)
		}
		cur, text = nil, nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if m := frameLine.FindStringSubmatch(line); m != nil {
			flush()
			n, _ := strconv.Atoi(m[1])
			sec, _ := strconv.ParseInt(m[2], 10, 64)
			frac := (m[3] + "000000000")[:9]
			nsec, _ := strconv.ParseInt(frac, 10, 64)
			f := &frame{n: n, at: time.Unix(sec, nsec), src: m[4], dst: m[6]}
			if m[5] != "" {
				f.src = m[5]
			}
			if m[7] != "" {
				f.dst = m[7]
			}
			cur = f
			continue
		}
		if cur != nil {
			text = append(text, line)
		}
	}
	flush()
	return frames
}

// replay runs a scenario through p as the engine would: the requests the
// phones send to the proxy through the request stages, at their capture
// time, and the responses the proxy sends through the response stages
// with the request they answer (matched by top Via branch and method) and
// the clock at their capture time. A response is local when no phone sent
// the proxy one with that Call-ID, CSeq and code.
func replay(t *testing.T, ch *chain, frames []frame) {
	t.Helper()
	reqs := map[string]*sip.Request{}
	relayed := map[string]bool{}
	branchKey := func(m sip.Message, method sip.RequestMethod) string {
		b, _ := m.Via().Params.Get("branch")
		return b + " " + string(method)
	}
	responseKey := func(res *sip.Response) string {
		return fmt.Sprintf("%s %d %s %d", res.CallID().Value(), res.CSeq().SeqNo, res.CSeq().MethodName, res.StatusCode)
	}
	for _, f := range frames {
		switch m := f.msg.(type) {
		case *sip.Request:
			if f.dst != "PROXY" {
				continue
			}
			reqs[branchKey(m, m.Method)] = m
			ch.request(t, m, f.at)
		case *sip.Response:
			if f.dst == "PROXY" {
				relayed[responseKey(m)] = true
				continue
			}
			if f.src != "PROXY" {
				continue
			}
			req := reqs[branchKey(m, m.CSeq().MethodName)]
			if req == nil {
				t.Fatalf("frame %d: no request for %d %s", f.n, m.StatusCode, m.CSeq().MethodName)
			}
			ch.response(t, req, m, f.at, made(!relayed[responseKey(m)])...)
		}
	}
}

var durationField = regexp.MustCompile(`Call duration: [0-9.]+ seconds`)

// TestSeedScenarios replays the four seed captures with format = "seed"
// and seed_only, and compares the log with the seed's, line for line:
// everything after the time, the durations aside (the seed measured them
// from a whole-second start). The durations are then checked against the
// capture's times (answer = the 200 going upstream, end = the BYE), and the
// times of the lines against the seed's where the seed logged at the same
// moment. Every call gets its record.
func TestSeedScenarios(t *testing.T) {
	tests := []struct {
		scenario  int
		durations []string
		cdrs      []string // caller,callee,disposition,end_code,ended_by,transfer_target,auth_user
	}{
		{1, []string{"17.23"}, []string{
			"desktop-linux,pocophone,cancelled,487,desktop-linux,,",
			"desktop-linux,pocophone,rejected,603,pocophone,,",
			"desktop-linux,pocophone,answered,,pocophone,,",
		}},
		{2, []string{"65.95"}, []string{
			"desktop-linux,pocophone,answered,,desktop-linux,,",
		}},
		{3, []string{"27.98", "26.09"}, []string{
			"desktop-linux,t440s,answered,,desktop-linux,,",
			"desktop-linux,pocophone,answered,,desktop-linux,,",
		}},
		{4, []string{"23.96", "61.09"}, []string{
			"desktop-linux,t440s,answered,,t440s,,",
			"desktop-linux,pocophone,answered,,pocophone,t440s,",
		}},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("scenar%d", tc.scenario), func(t *testing.T) {
			frames := loadFrames(t, fmt.Sprintf("%s/scenar%d.messages.txt", seedDir, tc.scenario))
			want := readLines(t, fmt.Sprintf("%s/scenar%d.log", seedDir, tc.scenario))
			events, cdrs := tempPaths(t)
			ch := mustChain(t, fmt.Sprintf(
				"path = %q\ncdr_path = %q\nseed_only = true\ntime_zone = \"Europe/Ljubljana\"", events, cdrs), nil)
			replay(t, ch, frames)
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			got := readLines(t, events)
			if len(got) == 0 || !strings.HasPrefix(got[0], "===== Starting server (") {
				t.Fatalf("test %d: no header line: %q", i, got)
			}
			mask := func(lines []string) []string {
				out := fields(lines)
				for j := range out {
					out[j] = durationField.ReplaceAllString(out[j], "Call duration: N seconds")
				}
				return out
			}
			g, w := mask(got), mask(want)
			if strings.Join(g, "\n") != strings.Join(w, "\n") {
				t.Errorf("test %d: log:\n%s\nwant (the seed's):\n%s", i, strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
			var durations []string
			for _, l := range got {
				if m := regexp.MustCompile(`Call duration: ([0-9.]+) seconds`).FindStringSubmatch(l); m != nil {
					durations = append(durations, m[1])
				}
			}
			if strings.Join(durations, " ") != strings.Join(tc.durations, " ") {
				t.Errorf("test %d: durations %v, want %v", i, durations, tc.durations)
			}
			// The seed logged CALL STARTED at the ACK, this stage at the
			// 200; every other line has the seed's time to the second.
			for j := 1; j < len(got) && j < len(want); j++ {
				if strings.Contains(want[j], "CALL STARTED") {
					continue
				}
				if gt, wt := got[j][:19], want[j][:19]; gt != wt {
					t.Errorf("test %d: line %d at %s, the seed's at %s: %s", i, j, gt, wt, want[j])
				}
			}
			var rows []string
			lines := readLines(t, cdrs)
			if len(lines) == 0 || lines[0] != strings.TrimSuffix(csvHeader, "\n") {
				t.Fatalf("test %d: CDR header: %q", i, lines)
			}
			for _, l := range lines[1:] {
				f := strings.Split(l, ",")
				rows = append(rows, strings.Join(append(f[1:3:3], f[7:12]...), ","))
			}
			if strings.Join(rows, "\n") != strings.Join(tc.cdrs, "\n") {
				t.Errorf("test %d: CDRs:\n%s\nwant:\n%s", i, strings.Join(rows, "\n"), strings.Join(tc.cdrs, "\n"))
			}
		})
	}
}

// TestSeedScenariosNewEvents replays the captures with every event: the
// seed's lines and, in their place, the new ones (RINGING, the classified
// re-INVITEs, TRANSFER).
func TestSeedScenariosNewEvents(t *testing.T) {
	tests := []struct {
		scenario int
		want     []string
	}{
		{1, []string{
			"REGISTER,desktop-linux",
			"REGISTER,pocophone",
			"INVITE,desktop-linux,pocophone",
			"RINGING,desktop-linux,pocophone",
			"487,desktop-linux,pocophone,Call hung up by desktop-linux",
			"INVITE,desktop-linux,pocophone",
			"RINGING,desktop-linux,pocophone",
			"603,desktop-linux,pocophone,Call hung up by pocophone",
			"INVITE,desktop-linux,pocophone",
			"RINGING,desktop-linux,pocophone",
			"CALL STARTED,desktop-linux,pocophone",
			"CALL ENDED,pocophone,desktop-linux,Call duration: 17.23 seconds",
		}},
		{2, []string{
			"REGISTER,pocophone",
			"REGISTER,desktop-linux",
			"INVITE,desktop-linux,pocophone",
			"RINGING,desktop-linux,pocophone",
			"CALL STARTED,desktop-linux,pocophone",
			"VIDEO ON,pocophone,desktop-linux",
			"SWITCH ACK,pocophone,desktop-linux",
			"VIDEO OFF,desktop-linux,pocophone",
			"SWITCH ACK,desktop-linux,pocophone",
			"CALL ENDED,desktop-linux,pocophone,Call duration: 65.95 seconds",
		}},
		{4, []string{
			"REGISTER,t440s",
			"REGISTER,pocophone",
			"REGISTER,desktop-linux",
			"INVITE,desktop-linux,pocophone",
			"RINGING,desktop-linux,pocophone",
			"CALL STARTED,desktop-linux,pocophone",
			"TRANSFER,pocophone,desktop-linux,Transfer to t440s",
			"HOLD,desktop-linux,pocophone",
			"INVITE,desktop-linux,t440s",
			"SWITCH ACK,desktop-linux,pocophone",
			"RINGING,desktop-linux,t440s",
			"CALL STARTED,desktop-linux,t440s",
			"CALL ENDED,t440s,desktop-linux,Call duration: 23.96 seconds",
			"RESUME,desktop-linux,pocophone",
			"SWITCH ACK,desktop-linux,pocophone",
			"CALL ENDED,pocophone,desktop-linux,Call duration: 61.09 seconds",
		}},
	}
	for i, tc := range tests {
		frames := loadFrames(t, fmt.Sprintf("%s/scenar%d.messages.txt", seedDir, tc.scenario))
		events, _ := tempPaths(t)
		ch := mustChain(t, fmt.Sprintf("path = %q", events), nil)
		replay(t, ch, frames)
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		got := fields(readLines(t, events))
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("test %d (scenar%d): log:\n%s\nwant:\n%s", i, tc.scenario, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}
