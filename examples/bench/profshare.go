package main

// Where a CPU profile's time went, by owner: the kernel, the garbage
// collector, the scheduler, sipgo, and Switchboard's own parts. Issue 19
// lets a target be reported missed only when what remains is in sipgo or
// in the kernel: this is the table that says so or not.

import (
	"bufio"
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

// profileSet is the owners of one proxy's CPU profile at one call rate.
type profileSet struct {
	Target string
	Rate   int
	Shares []profShare
}

// profShare is one owner's share of a profile.
type profShare struct {
	Owner string
	Time  time.Duration
	Share float64 // of the profile's samples
}

// profileShares reads a CPU profile with `go tool pprof -traces` and
// charges each sample to its owner (see owner), largest first.
func profileShares(ctx context.Context, path string) ([]profShare, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces %s: %w", path, err)
	}
	return sharesOfTraces(string(out))
}

// sharesOfTraces charges the samples of pprof's -traces output.
func sharesOfTraces(text string) ([]profShare, error) {
	by := map[string]time.Duration{}
	var total time.Duration
	var stack []string
	var value time.Duration
	flush := func() {
		if len(stack) > 0 {
			by[owner(stack)] += value
			total += value
		}
		stack, value = nil, 0
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) == 2 && len(stack) == 0 {
			d, err := time.ParseDuration(f[0])
			if err != nil {
				continue // the header's lines
			}
			value = d
			stack = append(stack, f[1])
			continue
		}
		if len(stack) > 0 && len(f) == 1 {
			stack = append(stack, f[0])
		}
	}
	flush()
	if total == 0 {
		return nil, fmt.Errorf("no samples")
	}
	var shares []profShare
	for o, d := range by {
		shares = append(shares, profShare{Owner: o, Time: d, Share: float64(d) / float64(total)})
	}
	slices.SortFunc(shares, func(a, b profShare) int { return int(b.Time - a.Time) })
	return shares, nil
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

// sharesMarkdown renders the shares of a profile taken at rate calls/s.
func sharesMarkdown(b *strings.Builder, name string, rate int, shares []profShare) {
	fmt.Fprintf(b, "\nWhere %s's CPU went at %d calls/s (its CPU profile, each sample charged to its owner: a system call to the kernel, "+
		"an allocation to the code that allocated, anything else to the first frame that is not Go's runtime or standard library):\n\n", name, rate)
	b.WriteString("| owner | CPU | share |\n|---|--:|--:|\n")
	for _, s := range shares {
		fmt.Fprintf(b, "| %s | %s | %s %% |\n", s.Owner, s.Time.Round(10*time.Millisecond), strconv.FormatFloat(100*s.Share, 'f', 1, 64))
	}
}
