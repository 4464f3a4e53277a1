package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/destinations"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// table writes tab-separated rows as aligned columns.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func showRegistrations(w io.Writer, body []byte) error {
	var regs []Registration
	if err := json.Unmarshal(body, &regs); err != nil {
		return err
	}
	if len(regs) == 0 {
		_, err := fmt.Fprintln(w, "no registrations")
		return err
	}
	var rows [][]string
	for _, r := range regs {
		for _, b := range r.Bindings {
			rows = append(rows, []string{r.AOR, b.Contact, strconv.Itoa(b.ExpiresIn) + "s", dash(b.Transport), dash(b.Received), dash(b.Instance), dash(b.UserAgent)})
		}
	}
	return table(w, "AOR\tCONTACT\tEXPIRES\tTRANSPORT\tRECEIVED\tINSTANCE\tUSER-AGENT", rows)
}

func showUnregistered(w io.Writer, body []byte) error {
	var u Unregistered
	if err := json.Unmarshal(body, &u); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s: %d binding(s) removed\n", u.AOR, u.Removed)
	return err
}

func showCalls(w io.Writer, body []byte) error {
	var calls []pipeline.CallInfo
	if err := json.Unmarshal(body, &calls); err != nil {
		return err
	}
	if len(calls) == 0 {
		_, err := fmt.Fprintln(w, "no calls in progress")
		return err
	}
	var rows [][]string
	for _, c := range calls {
		rows = append(rows, []string{c.CallID, c.Caller, c.Callee, c.State, time.Since(c.Start).Round(time.Second).String()})
	}
	return table(w, "CALL-ID\tCALLER\tCALLEE\tSTATE\tAGE", rows)
}

func showStats(w io.Writer, body []byte) error {
	var c metrics.Counts
	if err := json.Unmarshal(body, &c); err != nil {
		return err
	}
	var rows [][]string
	for _, m := range c.Messages {
		code := "-"
		switch {
		case m.Code > 0:
			code = strconv.Itoa(m.Code)
		case m.Code < 0:
			code = "other"
		}
		rows = append(rows, []string{m.Direction, m.Method, code, strconv.FormatUint(m.Count, 10)})
	}
	if err := table(w, "DIRECTION\tMETHOD\tCODE\tMESSAGES", rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows = nil
	for _, s := range c.Stages {
		var verdicts []string
		for v, n := range s.Verdicts {
			verdicts = append(verdicts, fmt.Sprintf("%s=%d", v, n))
		}
		sort.Strings(verdicts)
		rows = append(rows, []string{s.Stage, strconv.FormatUint(s.Requests, 10), strconv.FormatUint(s.Responses, 10),
			strconv.FormatUint(s.RuleMatches, 10), strconv.FormatUint(s.RuleFailures, 10), dash(strings.Join(verdicts, " "))})
	}
	return table(w, "STAGE\tREQUESTS\tRESPONSES\tRULE-MATCHES\tRULE-FAILURES\tVERDICTS", rows)
}

func showOutcome(w io.Writer, body []byte) error {
	var o Outcome
	if err := json.Unmarshal(body, &o); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "reload %s: hash %s\n", o.Result, short(o.Hash))
	return err
}

func showOverrides(w io.Writer, body []byte) error {
	var o Overrides
	if err := json.Unmarshal(body, &o); err != nil {
		return err
	}
	return printOverrides(w, o)
}

func printOverrides(w io.Writer, o Overrides) error {
	level := o.LogLevel
	if level == "" {
		level = "none: [log] level holds"
	}
	fmt.Fprintf(w, "log level override:  %s\n", level)
	_, err := fmt.Fprintf(w, "traced users:        %s\n", dash(strings.Join(o.Trace, ", ")))
	return err
}

func showConfig(w io.Writer, body []byte) error {
	var c Config
	if err := json.Unmarshal(body, &c); err != nil {
		return err
	}
	fmt.Fprintf(w, "file:                %s\n", c.Path)
	fmt.Fprintf(w, "hash:                %s\n", c.Hash)
	switch c.FileHash {
	case c.Hash:
	case "":
		fmt.Fprintln(w, "on disk:             unreadable")
	default:
		fmt.Fprintf(w, "on disk:             %s (edited, not in force)\n", c.FileHash)
	}
	fmt.Fprintf(w, "stages:              %s\n", strings.Join(c.Stages, ", "))
	if r := c.LastReload; r != nil {
		fmt.Fprintf(w, "last reload:         %s at %s (hash %s)\n", r.Result, r.At.Format(time.RFC3339), short(r.Hash))
	}
	return printOverrides(w, c.Overrides)
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func showDestinations(w io.Writer, body []byte) error {
	var ds []destinations.State
	if err := json.Unmarshal(body, &ds); err != nil {
		return err
	}
	if len(ds) == 0 {
		_, err := fmt.Fprintln(w, "no destination sets in use")
		return err
	}
	var rows [][]string
	for _, d := range ds {
		state := "down"
		switch {
		case d.Drained:
			state = "drained"
		case d.Alive:
			state = "up"
		}
		addrs := []string{}
		for _, a := range d.Addresses {
			up := "down"
			if a.Up {
				up = "up"
			}
			addrs = append(addrs, a.Address+"/"+strings.ToLower(a.Transport)+" "+up)
		}
		if d.ResolveError != "" {
			addrs = append(addrs, "unresolved: "+d.ResolveError)
		}
		rows = append(rows, []string{d.Set, d.URI, state, strconv.FormatInt(d.InProgress, 10), dash(strings.Join(addrs, ", "))})
	}
	return table(w, "SET\tURI\tSTATE\tIN PROGRESS\tADDRESSES", rows)
}
