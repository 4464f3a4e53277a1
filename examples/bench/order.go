package main

// The order check: calls whose callee answers 180 and 200 back to back,
// through a proxy, to a caller that requires the 180 before the 200. A
// proxy that relays the two in another order fails the call.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// playOrder plays the order check against every proxy of o.OrderTargets
// in turn, once each (Kamailio with its first number of workers).
func playOrder(ctx context.Context, o options, proxies []*proxy, work, sippCPUs string, res *result) error {
	if o.OrderDur <= 0 {
		return nil
	}
	kamailio := false
	for _, p := range proxies {
		// Kamailio plays it once, with its fewest workers.
		if p.Kamailio && (kamailio || !slices.Contains(o.OrderTargets, "kamailio")) ||
			!p.Kamailio && !slices.Contains(o.OrderTargets, p.Name) {
			continue
		}
		kamailio = kamailio || p.Kamailio
		if err := ctx.Err(); err != nil {
			return err
		}
		if !p.alive() {
			continue // noted by the series already, or by run
		}
		if err := waitQuiet(ctx, o.QuietWait, proxies); err != nil {
			return err
		}
		dir := filepath.Join(work, p.Name, fmt.Sprintf("%s-%d", workOrder, o.OrderRate))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		st := runCalls(ctx, o, p, workOrder, o.OrderRate, o.OrderDur, dir, sippCPUs, "")
		if st.Err == "" {
			if err := readOrderErrors(filepath.Join(dir, "uac_errors.log"), &st); err != nil {
				st.Err = err.Error()
			}
		}
		st.Try = 1
		res.Steps = append(res.Steps, st)
		o.logf("%s", orderLine(st))
	}
	return nil
}

// unexpectedAnswer matches SIPp's error line for a call that got a
// response to its INVITE while it waited for the 100 or the 180: a 200
// that overtook the 180, or a refusal.
var unexpectedAnswer = regexp.MustCompile(`Aborting call on unexpected message for Call-Id '[^']*': ` +
	`while expecting '(?:100|180)' \(index \d+\), received 'SIP/2\.0 (\d{3}) `)

// readOrderErrors reads a caller's error trace (-trace_err) into st: the
// calls whose 200 came before the 180 (Overtaken), and those answered a
// final error instead of the 180 (Refused, by status code). A missing
// trace counts none.
func readOrderErrors(path string, st *step) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, m := range unexpectedAnswer.FindAllSubmatch(data, -1) {
		code, _ := strconv.Atoi(string(m[1]))
		switch {
		case code == 200:
			st.Overtaken++
		case code >= 300:
			if st.Refused == nil {
				st.Refused = map[int]int{}
			}
			st.Refused[code]++
		}
	}
	return nil
}

// otherFailures says how many calls of an order step failed for another
// reason than their order, and why.
func otherFailures(s step) string {
	n := s.Failed - s.Overtaken
	if n <= 0 {
		return "0"
	}
	var why []string
	rest := n
	for _, code := range slices.Sorted(maps.Keys(s.Refused)) {
		why = append(why, fmt.Sprintf("%d answered %d", s.Refused[code], code))
		rest -= s.Refused[code]
	}
	if len(why) == 0 {
		return fmt.Sprintf("%d (time-outs, or later in the call)", n)
	}
	if rest > 0 {
		why = append(why, fmt.Sprintf("%d time-outs, or later in the call", rest))
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(why, ", "))
}

// orderLine sums an order step up on one line.
func orderLine(s step) string {
	if s.Err != "" {
		return fmt.Sprintf("%-10s %-13s %5d/s: error: %s", s.Target, s.Workload, s.Rate, s.Err)
	}
	return fmt.Sprintf("%-10s %-13s %5d/s: %d of %d calls out of order; other failed calls: %s; proxy %.0f%% CPU, sipp %.0f%%+%.0f%%, other %.0f%%",
		s.Target, s.Workload, s.Rate, s.Overtaken, s.Planned, otherFailures(s), s.pct(s.ProxyCPU), s.pct(s.UACCPU), s.pct(s.UASCPU), s.pct(s.OtherCPU))
}

// share is n and its percentage of total.
func share(n, total int) string {
	if total <= 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%.2f %%)", n, 100*float64(n)/float64(total))
}

// orderSteps returns the steps of the order check.
func orderSteps(r *result) []step {
	var out []step
	for _, s := range r.Steps {
		if s.Workload == workOrder {
			out = append(out, s)
		}
	}
	return out
}

// ordersMarkdown renders the order check of every setup, "" when it ran
// in none.
func ordersMarkdown(rep *report) string {
	var b strings.Builder
	for _, r := range rep.Runs {
		if md := orderMarkdown(r); md != "" {
			fmt.Fprintf(&b, "\n### Setup %s: %s\n\n%s", r.Opts.Setup, pinning(r.Opts), md)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return runLine(rep) + "\n" + b.String()
}

// orderMarkdown renders the order check of one setup, "" when it did not
// run.
func orderMarkdown(r *result) string {
	steps := orderSteps(r)
	if len(steps) == 0 {
		return ""
	}
	o := r.Opts
	var b strings.Builder
	if r.Partial != "" {
		fmt.Fprintf(&b, "**Partial**: this setup stopped before its end (%s).\n\n", r.Partial)
	}
	fmt.Fprintf(&b, "The callee (`bench_uas.xml`) answers every INVITE with a 180 and a 200 back to back, and the caller "+
		"(`bench_order_uac.xml`) requires the 180 before the 200: %d calls at %d calls/s through each proxy, a call counted "+
		"out of order when its 200 came while it waited for the 180 (the 180 late or lost), from SIPp's error trace. "+
		"The calls that failed otherwise are counted apart: refused, timed out, or failed later in the call. "+
		"Other CPU is the machine's busy time that was neither the proxy's nor SIPp's, as a share of one core: other processes.\n\n", o.OrderRate*int(o.OrderDur.Seconds()), o.OrderRate)
	b.WriteString("| proxy | calls | out of order | other failed calls | proxy CPU | other CPU |\n")
	b.WriteString("|---|--:|--:|---|--:|--:|\n")
	for _, s := range steps {
		if s.Err != "" {
			fmt.Fprintf(&b, "| %s | %d | n/a: %s | n/a | n/a | n/a |\n", s.Target, s.Planned, s.Err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.0f%% | %.0f%% |\n", s.Target, s.Planned, share(s.Overtaken, s.Planned), otherFailures(s),
			s.pct(s.ProxyCPU), s.pct(s.OtherCPU))
	}
	return b.String()
}

// checkOrder returns an error unless the order check ran and reported for
// every proxy of o.OrderTargets that r measured. It sets no threshold on
// the count: that is the report's to say.
func checkOrder(r *result) error {
	if r.Opts.OrderDur <= 0 {
		return nil
	}
	var errs []error
	for _, t := range r.Targets {
		name := t.Name
		if t.Kamailio {
			name = "kamailio"
		}
		if !slices.Contains(r.Opts.OrderTargets, name) || t.Kamailio && kamailioChecked(r, t) {
			continue
		}
		found := false
		for _, s := range orderSteps(r) {
			if s.Target != t.Name {
				continue
			}
			found = true
			switch {
			case s.Err != "":
				errs = append(errs, fmt.Errorf("%s order check: %s", t.Name, s.Err))
			case s.Attempted == 0:
				errs = append(errs, fmt.Errorf("%s order check: sipp made no call", t.Name))
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("%s: no order check ran", t.Name))
		}
	}
	return errors.Join(errs...)
}

// kamailioChecked reports whether t is a Kamailio other than the first of
// r: the order check plays only the first.
func kamailioChecked(r *result, t target) bool {
	for _, u := range r.Targets {
		if u.Kamailio {
			return u.Name != t.Name
		}
	}
	return false
}
