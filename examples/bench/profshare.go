package main

// Where a CPU profile's time went, by owner: the kernel, the garbage
// collector, the scheduler, sipgo, and Switchboard's own parts. Issue 19
// lets a target be reported missed only when what remains is in sipgo or
// in the kernel: this is the table that says so or not.

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The owners a sample is charged to.
const (
	ownKernel    = "kernel: system calls"
	ownGC        = "Go runtime: garbage collector (background marking)"
	ownSched     = "Go runtime: scheduler, timers, stacks"
	ownAllocSip  = "Go runtime: allocation for sipgo"
	ownAllocOurs = "Go runtime: allocation for Switchboard"
	ownSipgo     = "sipgo: parse, transactions, transport"
	ownEngine    = "Switchboard: engine"
	ownStages    = "Switchboard: pipeline and stages"
	ownCapture   = "Switchboard: capture and console recorder"
	ownLibs      = "libraries: expr, bbolt"
	ownOther     = "other"
)

const (
	sipgoPkg = "github.com/emiago/sipgo/"
	ourPkg   = "github.com/switchboard-sip/switchboard/"
)

// profileSet is the owners of one proxy's CPU profile at one rate of a
// workload (calls or REGISTERs), and of the heap in use at its end.
type profileSet struct {
	Target   string
	Workload string // workCalls or workRegistrations
	Rate     int
	Shares   []profShare
	Heap     []profShare
	// ProfiledCPU is the proxy's CPU time, read from /proc, while the
	// CPU profile was taken (0: unknown).
	ProfiledCPU time.Duration
}

// sampled is the CPU time the profile's samples hold.
func (s profileSet) sampled() time.Duration {
	var sum float64
	for _, sh := range s.Shares {
		sum += sh.Value
	}
	return time.Duration(sum)
}

// captured is the share of the proxy's CPU time its profile holds (0:
// unknown).
func (s profileSet) captured() float64 {
	if s.ProfiledCPU <= 0 {
		return 0
	}
	return float64(s.sampled()) / float64(s.ProfiledCPU)
}

// rateText names the profile's rate: "1000 calls/s", "4000 REGISTERs/s".
func (s profileSet) rateText() string {
	if s.Workload == workRegistrations {
		return fmt.Sprintf("%d REGISTERs/s", s.Rate)
	}
	return fmt.Sprintf("%d calls/s", s.Rate)
}

// profileThin is the share of the proxy's CPU time below which a profile
// is flagged: on a virtual machine Go's profiler may lose half its
// samples, not evenly across the code.
const profileThin = 0.8

// profShare is one owner's share of a profile: CPU time (ns) or bytes in
// use.
type profShare struct {
	Owner string
	Value float64
	Share float64 // of the profile's samples
}

// profileShares reads a profile with `go tool pprof -traces` (a heap
// profile's bytes in use, with index inuse_space) and charges each sample
// to its owner (see owner), largest first.
func profileShares(ctx context.Context, path, index string) ([]profShare, error) {
	args := []string{"tool", "pprof", "-traces"}
	if index != "" {
		args = append(args, "-sample_index="+index)
	}
	out, err := exec.CommandContext(ctx, "go", append(args, path)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces %s: %w", path, err)
	}
	return sharesOfTraces(string(out))
}

// sampleValue reads a value of pprof's -traces output: a duration
// ("140ms") or a size ("1.50MB", "512kB", "0").
func sampleValue(s string) (float64, bool) {
	if d, err := time.ParseDuration(s); err == nil {
		return float64(d), true
	}
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			return v * u.scale, err == nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// sharesOfTraces charges the samples of pprof's -traces output.
func sharesOfTraces(text string) ([]profShare, error) {
	traces, err := parseTraces(text)
	if err != nil {
		return nil, err
	}
	by := map[string]float64{}
	var total float64
	for _, tr := range traces {
		by[owner(tr.stack)] += tr.value
		total += tr.value
	}
	if total == 0 {
		return nil, fmt.Errorf("no samples")
	}
	var shares []profShare
	for o, v := range by {
		shares = append(shares, profShare{Owner: o, Value: v, Share: v / total})
	}
	slices.SortFunc(shares, func(a, b profShare) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Owner, b.Owner))
	})
	return shares, nil
}

// trace is one stack of pprof's -traces output, leaf first, and its
// value.
type trace struct {
	value float64
	stack []string
}

// parseTraces reads pprof's -traces output. A trace is its value and leaf
// on one line, then a frame a line, and ends at a line of dashes; a heap
// profile's traces start with their labels ("bytes:  48B"), which are
// skipped. A frame may hold spaces: an inlined function's " (inline)",
// which is dropped, and a generic function's type arguments
// ("sync.(*HashTrieMap[go.shape.interface {},...]).Load").
func parseTraces(text string) ([]trace, error) {
	var traces []trace
	var cur trace
	inTrace := false // past the header
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			if len(cur.stack) > 0 {
				traces = append(traces, cur)
			}
			cur, inTrace = trace{}, true
			continue
		}
		frame := strings.TrimSuffix(strings.TrimSpace(line), " (inline)")
		if !inTrace || frame == "" {
			continue
		}
		if len(cur.stack) > 0 {
			cur.stack = append(cur.stack, frame)
			continue
		}
		v, leaf, _ := strings.Cut(frame, " ")
		if strings.HasSuffix(v, ":") {
			continue // a label
		}
		if value, ok := sampleValue(v); ok && leaf != "" {
			cur.value = value
			cur.stack = append(cur.stack, strings.TrimSpace(leaf))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pprof -traces: %w", err)
	}
	if len(cur.stack) > 0 {
		traces = append(traces, cur)
	}
	return traces, nil
}

// owner charges a sample (its stack, leaf first): background marking to
// the collector; a system call to the kernel; allocation to whoever
// allocated (sipgo or Switchboard); the scheduler's own work to the
// scheduler; anything else to the first frame, from the leaf, that is
// neither the runtime's nor the standard library's.
func owner(stack []string) string {
	if slices.ContainsFunc(stack, func(fn string) bool { return strings.HasPrefix(fn, "runtime.gcBgMarkWorker") }) {
		return ownGC
	}
	leaf := stack[0]
	if strings.HasPrefix(leaf, "internal/runtime/syscall") || strings.HasPrefix(leaf, "syscall.") ||
		leaf == "runtime.futex" || leaf == "runtime.epollwait" || leaf == "runtime.usleep" || leaf == "runtime.nanotime1" ||
		leaf == "runtime.write1" || leaf == "runtime.madvise" || leaf == "runtime.osyield" {
		return ownKernel
	}
	first := ""
	for _, fn := range stack {
		if strings.HasPrefix(fn, sipgoPkg) || strings.HasPrefix(fn, ourPkg) || strings.HasPrefix(fn, "github.com/") || strings.HasPrefix(fn, "go.etcd.io/") {
			first = fn
			break
		}
	}
	allocating := slices.ContainsFunc(stack, func(fn string) bool {
		return strings.HasPrefix(fn, "runtime.mallocgc") || strings.HasPrefix(fn, "runtime.newobject") ||
			strings.HasPrefix(fn, "runtime.growslice") || strings.HasPrefix(fn, "runtime.makeslice") ||
			strings.HasPrefix(fn, "runtime.gcAssist")
	})
	runtimeLeaf := strings.HasPrefix(leaf, "runtime.") || strings.HasPrefix(leaf, "internal/runtime/") || leaf == "gcWriteBarrier" ||
		strings.HasPrefix(leaf, "aeshash") || strings.HasPrefix(leaf, "memeqbody")
	switch {
	case allocating && runtimeLeaf && strings.HasPrefix(first, sipgoPkg):
		return ownAllocSip
	case allocating && runtimeLeaf && first != "":
		return ownAllocOurs
	case first == "":
		if runtimeLeaf {
			return ownSched
		}
		return ownOther
	case strings.HasPrefix(first, sipgoPkg):
		return ownSipgo
	case strings.HasPrefix(first, ourPkg+"pipeline/engine"):
		return ownEngine
	case strings.HasPrefix(first, ourPkg+"pipeline/capture"):
		return ownCapture
	case strings.HasPrefix(first, ourPkg):
		return ownStages
	}
	return ownLibs
}

// sharesMarkdown renders the owners of a proxy's profiles taken at a
// rate: its CPU, and its heap in use.
func sharesMarkdown(b *strings.Builder, s profileSet) {
	fmt.Fprintf(b, "\nWhere %s's CPU went at %s (its CPU profile, each sample charged to its owner: a system call to the kernel, "+
		"an allocation to the code that allocated, anything else to the first frame that is not Go's runtime or standard library):\n\n", s.Target, s.rateText())
	b.WriteString("| owner | CPU | share |\n|---|--:|--:|\n")
	for _, sh := range s.Shares {
		fmt.Fprintf(b, "| %s | %s | %.1f %% |\n", sh.Owner, time.Duration(sh.Value).Round(10*time.Millisecond), 100*sh.Share)
	}
	if c := s.captured(); c > 0 {
		fmt.Fprintf(b, "\nThe profile holds %s of samples, %.0f %% of the %s of CPU the proxy took while it was taken.", s.sampled().Round(10*time.Millisecond), 100*c, s.ProfiledCPU.Round(10*time.Millisecond))
		if c < profileThin {
			b.WriteString(" **A thin profile**: it lost samples, not evenly (in the tenth round such profiles put the collector at several times its share by perf; docs/benchmarks.md).")
		}
		b.WriteString("\n")
	}
	if len(s.Heap) == 0 {
		return
	}
	fmt.Fprintf(b, "\nWho allocated the heap %s held while the %s at %s ran (its heap profile, bytes in use by the allocating code):\n\n", s.Target, s.Workload, s.rateText())
	b.WriteString("| owner | in use | share |\n|---|--:|--:|\n")
	for _, sh := range s.Heap {
		fmt.Fprintf(b, "| %s | %.1f MiB | %.1f %% |\n", sh.Owner, sh.Value/(1<<20), 100*sh.Share)
	}
}
