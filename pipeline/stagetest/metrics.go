package stagetest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/destinations"
	"github.com/switchboard-sip/switchboard/pipeline/location"
	"github.com/switchboard-sip/switchboard/pipeline/metrics"
)

// exported is what the process exports once a chain is built: the names of
// its metrics, and those of the metrics that one stage type feeds.
type exported struct {
	all, stage map[string]bool
}

// exportedBy builds toml over services with Prometheus collectors, as the
// binary does, and returns what the process then exports and which of it
// stage type name feeds: the metrics with a series labelled with the
// stage's `stage` label ("2:name"), those its build registered that carry
// no such label, and switchboard_active_calls when it shares a
// pipeline.CallLister.
func exportedBy(t testing.TB, name, toml string, opts ...Option) (exported, error) {
	t.Helper()
	zero := func() float64 { return 0 }
	svc := &pipeline.Services{Location: location.NewMemory()}
	m := metrics.New(metrics.Gauges{Bindings: zero, AORs: zero, Calls: zero, Transactions: zero, Lingering: zero,
		Destinations: func() []metrics.Destination { return destinations.Metrics(&svc.Shared) }})
	svc.Metrics = m
	defer svc.Close()
	before, err := families(m)
	if err != nil {
		return exported{}, err
	}
	h, err := Build(t, toml, append(opts, WithServices(svc))...)
	if err != nil {
		return exported{}, err
	}
	defer h.Close()
	after, err := families(m)
	if err != nil {
		return exported{}, err
	}
	out := exported{all: map[string]bool{}, stage: map[string]bool{}}
	for family, stages := range after {
		out.all[family] = true
		_, old := before[family]
		switch {
		case slices.ContainsFunc(stages, func(s string) bool { return strings.HasSuffix(s, ":"+name) }):
			out.stage[family] = true
		case !old && len(stages) == 0:
			out.stage[family] = true
		}
	}
	svc.Shared.Range(func(_ string, v any) {
		if _, ok := v.(pipeline.CallLister); ok {
			out.stage["switchboard_active_calls"] = true
		}
	})
	return out, nil
}

// families returns the metric families m's registry exports, each with
// the values of its `stage` label.
func families(m *metrics.Metrics) (map[string][]string, error) {
	gathered, err := m.Registry.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering the metrics: %w", err)
	}
	out := make(map[string][]string, len(gathered))
	for _, f := range gathered {
		var stages []string
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "stage" {
					stages = append(stages, l.GetValue())
				}
			}
		}
		out[f.GetName()] = stages
	}
	return out, nil
}

// metricName matches a Switchboard metric's name in a README.
var metricName = regexp.MustCompile(`\bswitchboard_[a-z0-9_]+\b`)

// checkMetrics checks a README's Metrics section against what the stage
// exports: it names every metric the stage feeds, and no name that the
// process does not export.
func checkMetrics(t testing.TB, path, section string, got exported) {
	t.Helper()
	named := map[string]bool{}
	for _, n := range metricName.FindAllString(section, -1) {
		named[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(named)) {
		if !got.all[n] {
			t.Errorf("%s: ## Metrics names %s, which Switchboard does not export", path, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(got.stage)) {
		if !named[n] {
			t.Errorf("%s: ## Metrics does not name %s, which the stage exports", path, n)
		}
	}
}
