package main

// Running SIPp and reading what it counted: the cumulative counters of its
// -trace_stat file and the response times of its -trace_rtt file.

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sippBuffer is SIPp's -buff_size, its sockets' buffers in bytes.
const sippBuffer = 4 << 20

// sipp is one SIPp process.
type sipp struct {
	label string
	dir   string // its working directory: trace files
	args  []string
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	start time.Time
	wall  time.Duration
}

// startSipp starts sipp with args in dir, pinned to cpus (taskset -c) when
// cpus is not "". The process is killed when ctx ends.
func startSipp(ctx context.Context, label, dir, cpus string, args ...string) (*sipp, error) {
	args = append(args, "-nostdin",
		// Socket buffers of 4 MB (the kernel's rmem_max here): SIPp's own
		// 64 KB would drop datagrams before the proxy does.
		"-buff_size", strconv.Itoa(sippBuffer),
		"-trace_stat", "-stf", filepath.Join(dir, label+"_stat.csv"), "-fd", "1",
		"-trace_err", "-error_file", filepath.Join(dir, label+"_errors.log"),
	)
	name := "sipp"
	cmdArgs := args
	if cpus != "" {
		name = "taskset"
		cmdArgs = append([]string{"-c", cpus, "sipp"}, args...)
	}
	s := &sipp{label: label, dir: dir, args: args, done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, name, cmdArgs...)
	s.cmd.Dir = dir
	out, err := os.Create(filepath.Join(dir, label+"_screen.log"))
	if err != nil {
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.WaitDelay = 5 * time.Second
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.start = time.Now()
	if err := s.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start sipp %s: %w", strings.Join(args, " "), err)
	}
	go func() {
		s.err = s.cmd.Wait()
		s.wall = time.Since(s.start)
		out.Close()
		close(s.done)
	}()
	return s, nil
}

// wait waits for sipp to exit, for at most d; then it is stopped (stop).
func (s *sipp) wait(d time.Duration) {
	select {
	case <-s.done:
	case <-time.After(d):
		s.stop()
	}
}

// stop ends a sipp that still runs: SIGUSR1 (its soft exit: no new calls,
// the calls in progress finish), then a kill after 5 s.
func (s *sipp) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// exitCode returns sipp's exit code, -1 when it was killed.
func (s *sipp) exitCode() int {
	<-s.done
	var exit *exec.ExitError
	switch {
	case s.err == nil:
		return 0
	case errors.As(s.err, &exit) && exit.Exited():
		return exit.ExitCode()
	}
	return -1
}

// cpu returns the CPU time sipp used (user plus system), once it exited.
// Under taskset the process is sipp itself: taskset execs it.
func (s *sipp) cpu() time.Duration {
	<-s.done
	if s.cmd.ProcessState == nil {
		return 0
	}
	return s.cmd.ProcessState.UserTime() + s.cmd.ProcessState.SystemTime()
}

// describe returns the command line and the tail of the error trace, for
// a failure message.
func (s *sipp) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sipp %s (in %s, exit code %d)", strings.Join(s.args, " "), s.dir, s.exitCode())
	if data, err := os.ReadFile(filepath.Join(s.dir, s.label+"_errors.log")); err == nil && len(data) > 0 {
		if len(data) > 1500 {
			data = data[len(data)-1500:]
		}
		fmt.Fprintf(&b, "\n  last errors:\n%s", data)
	}
	return b.String()
}

// counters are the cumulative counters of the last line of a -trace_stat
// file, by column name without "(C)".
type counters map[string]string

func (c counters) int(name string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(c[name]))
	return n
}

// stats reads the last line of sipp's -trace_stat file.
func (s *sipp) stats() (counters, error) {
	return readStats(filepath.Join(s.dir, s.label+"_stat.csv"))
}

func readStats(path string) (counters, error) {
	rows, err := readStatRows(path)
	if err != nil {
		return nil, err
	}
	head, last := rows[0], rows[len(rows)-1]
	c := counters{}
	for i, name := range head {
		if i >= len(last) {
			break
		}
		if strings.HasSuffix(name, "(P)") {
			continue
		}
		c[strings.TrimSuffix(name, "(C)")] = last[i]
	}
	if _, ok := c["SuccessfulCall"]; !ok {
		return nil, fmt.Errorf("%s: no SuccessfulCall column", path)
	}
	return c, nil
}

// readStatRows reads a -trace_stat file: its header, then a line per
// -fd period.
func readStatRows(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: no statistics line", path)
	}
	return rows, nil
}

// rtt is one response time of a -trace_rtt file: when it was measured
// (ms since sipp started) and how long it was (ms).
type rtt struct {
	at, ms float64
}

// rtts reads the response times of the -trace_rtt files in dir written by
// the scenario named scenario, by rtd number.
func rtts(dir, scenario string) (map[int][]rtt, error) {
	paths, err := filepath.Glob(filepath.Join(dir, scenario+"_*_rtt.csv"))
	if err != nil {
		return nil, err
	}
	out := map[int][]rtt{}
	for _, p := range paths {
		if err := readRTT(p, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRTT adds the lines of a -trace_rtt file, "Date_ms;response_time_ms;
// rtd_no", to out.
func readRTT(path string, out map[int][]rtt) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ";")
		if len(parts) < 3 {
			continue
		}
		at, err0 := strconv.ParseFloat(parts[0], 64)
		ms, err1 := strconv.ParseFloat(parts[1], 64)
		rtd, err2 := strconv.Atoi(parts[2])
		if err0 != nil || err1 != nil || err2 != nil {
			continue // the header line
		}
		out[rtd] = append(out[rtd], rtt{at: at, ms: ms})
	}
	return sc.Err()
}

// durations returns the response times of rs, in ms.
func durations(rs []rtt) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.ms
	}
	return out
}

// rate returns how many of rs were measured per second, from the first to
// the last: the rate at which the proxy answered. It needs two or more.
func rate(rs []rtt) (float64, bool) {
	if len(rs) < 2 {
		return 0, false
	}
	first, last := rs[0].at, rs[0].at
	for _, r := range rs {
		first, last = min(first, r.at), max(last, r.at)
	}
	if last <= first {
		return 0, false
	}
	return float64(len(rs)-1) / ((last - first) / 1000), true
}

// percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest-rank method, and false when there are none.
func percentile(values []float64, p float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	rank = max(0, min(rank, len(s)-1))
	return s[rank], true
}

// rttFreq returns sipp's -rtt_freq for a run of n calls: the largest of a
// few round numbers that divides n, since sipp writes the response times
// only every rtt_freq calls and drops what is left at the end.
func rttFreq(n int) int {
	for _, f := range []int{200, 100, 50, 20, 10, 5, 2} {
		if n%f == 0 {
			return f
		}
	}
	return 1
}
