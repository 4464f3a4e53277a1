package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOwner(t *testing.T) {
	for _, c := range []struct {
		name  string
		stack []string
		want  string
	}{
		{"sendto from sipgo", []string{"internal/runtime/syscall/linux.Syscall6", "syscall.sendto", "net.(*UDPConn).WriteTo", "github.com/emiago/sipgo/sip.(*UDPConnection).WriteTo"}, ownKernel},
		{"marking", []string{"runtime.scanObject", "runtime.gcDrain", "runtime.gcBgMarkWorker.func2", "runtime.gcBgMarkWorker"}, ownGC},
		{"sipgo's parser allocating", []string{"runtime.nextFreeFast", "runtime.mallocgc", "runtime.newobject", "github.com/emiago/sipgo/sip.NewParams"}, ownAllocSip},
		{"the engine allocating", []string{"runtime.memclrNoHeapPointers", "runtime.mallocgc", "runtime.makeslice", "github.com/switchboard-sip/switchboard/pipeline/engine.(*transaction).serve"}, ownAllocOurs},
		{"sipgo's parser", []string{"bytes.IndexByte", "github.com/emiago/sipgo/sip.(*Parser).ParseSIP"}, ownSipgo},
		{"the engine", []string{"github.com/switchboard-sip/switchboard/pipeline/engine.(*callOrder).enter"}, ownEngine},
		{"a stage through json", []string{"encoding/json.checkValid", "encoding/json.Unmarshal", "github.com/switchboard-sip/switchboard/pipeline/location.(*Bolt).get"}, ownStages},
		{"the recorder", []string{"github.com/switchboard-sip/switchboard/pipeline/capture.(*Recorder).Record"}, ownCapture},
		{"expr", []string{"github.com/expr-lang/expr/vm.(*VM).Run", "github.com/switchboard-sip/switchboard/pipeline.(*Rule).Match"}, ownLibs},
		{"the scheduler", []string{"runtime.findRunnable", "runtime.schedule", "runtime.park_m", "runtime.mcall"}, ownSched},
	} {
		if got := owner(c.stack); got != c.want {
			t.Errorf("%s: owner %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSharesOfTraces(t *testing.T) {
	traces := `File: switchboard
Type: cpu
Duration: 9s, Total samples = 600ms (6.67%)
-----------+-------------------------------------------------------
     300ms   internal/runtime/syscall/linux.Syscall6
             syscall.sendto
             github.com/emiago/sipgo/sip.(*UDPConnection).WriteTo
-----------+-------------------------------------------------------
     100ms   github.com/emiago/sipgo/sip.ParseUri
             github.com/emiago/sipgo/sip.(*Parser).ParseSIP
-----------+-------------------------------------------------------
     100ms   internal/sync.(*HashTrieMap[go.shape.interface {},go.shape.interface {}]).Load
             sync.(*Map).Load
             github.com/emiago/sipgo/sip.(*transactionStore[go.shape.*uint8]).get
-----------+-------------------------------------------------------
      50ms   runtime.nextFreeFast (inline)
             runtime.mallocgc
             github.com/emiago/sipgo/sip.NewParams (inline)
             github.com/emiago/sipgo/sip.(*Parser).ParseSIP
-----------+-------------------------------------------------------
      50ms   internal/runtime/syscall/linux.Syscall6
             syscall.Syscall6 (inline)
             github.com/emiago/sipgo/sip.(*UDPConnection).WriteTo
-----------+-------------------------------------------------------
`
	got, err := sharesOfTraces(traces)
	if err != nil {
		t.Fatal(err)
	}
	want := []profShare{{ownKernel, float64(350 * time.Millisecond), 350.0 / 600}, {ownSipgo, float64(200 * time.Millisecond), 200.0 / 600}, {ownAllocSip, float64(50 * time.Millisecond), 50.0 / 600}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("share %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := sharesOfTraces("File: switchboard\n"); err == nil {
		t.Error("a profile without samples gave no error")
	}
}

// TestParseTraces checks the stacks read from pprof's -traces output, of
// a CPU profile and of a heap profile (whose traces start with labels).
func TestParseTraces(t *testing.T) {
	tests := []struct {
		name, text string
		want       []trace
	}{
		{"inlined and generic frames", `Type: cpu
Duration: 9s, Total samples = 60ms (0.67%)
-----------+-------------------------------------------------------
      50ms   runtime.nextFreeFast (inline)
             github.com/emiago/sipgo/sip.NewParams (inline)
             github.com/emiago/sipgo/sip.(*Parser).ParseSIP
-----------+-------------------------------------------------------
      10ms   internal/sync.(*HashTrieMap[go.shape.interface {},go.shape.interface {}]).Load
             sync.(*Map).Load
-----------+-------------------------------------------------------
`, []trace{
			{float64(50 * time.Millisecond), []string{"runtime.nextFreeFast", "github.com/emiago/sipgo/sip.NewParams", "github.com/emiago/sipgo/sip.(*Parser).ParseSIP"}},
			{float64(10 * time.Millisecond), []string{"internal/sync.(*HashTrieMap[go.shape.interface {},go.shape.interface {}]).Load", "sync.(*Map).Load"}},
		}},
		{"a heap profile's labels", `Type: inuse_space
-----------+-------------------------------------------------------
     bytes:  48B
    1.50kB   github.com/emiago/sipgo/sip.NewRequest
             github.com/emiago/sipgo/sip.(*Parser).ParseSIP
-----------+-------------------------------------------------------
     bytes:  2MB
         0   runtime/pprof.allFrames
-----------+-------------------------------------------------------
`, []trace{
			{1.5 * 1024, []string{"github.com/emiago/sipgo/sip.NewRequest", "github.com/emiago/sipgo/sip.(*Parser).ParseSIP"}},
			{0, []string{"runtime/pprof.allFrames"}},
		}},
	}
	for _, tc := range tests {
		got, err := parseTraces(tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestSampleValue(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"140ms", float64(140 * time.Millisecond), true},
		{"1.50MB", 1.5 * (1 << 20), true},
		{"512kB", 512 << 10, true},
		{"100B", 100, true},
		{"0", 0, true},
		{"File:", 0, false},
	} {
		got, ok := sampleValue(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("sampleValue(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestSharesMarkdown checks that the owners' tables name the workload and
// rate their profiles were taken at.
func TestSharesMarkdown(t *testing.T) {
	tests := []struct {
		set   profileSet
		wants []string
	}{
		{profileSet{Target: "sb-seed", Workload: workCalls, Rate: 1000, Shares: []profShare{{ownKernel, 1e9, 0.5}}, Heap: []profShare{{ownSipgo, 1 << 20, 0.75}}},
			[]string{"Where sb-seed's CPU went at 1000 calls/s", "| " + ownKernel + " | 1s | 50.0 % |", "while the calls at 1000 calls/s ran", "| " + ownSipgo + " | 1.0 MiB | 75.0 % |"}},
		{profileSet{Target: "sb-seed", Workload: workRegistrations, Rate: 4000, Shares: []profShare{{ownKernel, 1e9, 1}}},
			[]string{"Where sb-seed's CPU went at 4000 REGISTERs/s"}},
		{profileSet{Target: "sb-seed", Workload: workCalls, Rate: 1000, Shares: []profShare{{ownKernel, 2e9, 1}}, ProfiledCPU: 5 * time.Second},
			[]string{"The profile holds 2s of samples, 40 % of the 5s of CPU", "**A thin profile**"}},
		{profileSet{Target: "sb-seed", Workload: workCalls, Rate: 1000, Shares: []profShare{{ownKernel, 4.5e9, 1}}, ProfiledCPU: 5 * time.Second},
			[]string{"The profile holds 4.5s of samples, 90 % of the 5s of CPU"}},
	}
	for _, tc := range tests {
		var b strings.Builder
		sharesMarkdown(&b, tc.set)
		for _, want := range tc.wants {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s at %d: no %q in\n%s", tc.set.Workload, tc.set.Rate, want, b.String())
			}
		}
		if tc.set.captured() >= profileThin && strings.Contains(b.String(), "thin profile") {
			t.Errorf("a profile holding %.0f %% of the CPU flagged as thin:\n%s", 100*tc.set.captured(), b.String())
		}
		if tc.set.Heap == nil && strings.Contains(b.String(), "Who allocated") {
			t.Errorf("%s: a heap table without a heap profile:\n%s", tc.set.Workload, b.String())
		}
	}
}
