package metrics

import (
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Counts are the message and stage counters since start, for `switchboard
// ctl stats`: read from the collectors, so they say what /metrics says.
type Counts struct {
	Messages []MessageCount `json:"messages"`
	Stages   []StageCount   `json:"stages"`
}

// MessageCount is the number of requests of a method, or of responses of a
// method and status code, received (in) or sent (out).
type MessageCount struct {
	Direction string `json:"direction"`
	Method    string `json:"method"`
	// Code is the status code; 0 for requests, -1 for a code outside 100-699.
	Code  int    `json:"code"`
	Count uint64 `json:"count"`
}

// StageCount is what one stage did: the requests and responses it ran on
// (its rule matched), what it decided for the requests, and its rule.
type StageCount struct {
	Stage        string            `json:"stage"`
	Requests     uint64            `json:"requests"`
	Responses    uint64            `json:"responses"`
	Verdicts     map[string]uint64 `json:"verdicts"`
	RuleMatches  uint64            `json:"rule_matches"`
	RuleFailures uint64            `json:"rule_failures"`
}

// Counts reads the counters. Messages are sorted by direction, method and
// code; stages by their position in the config (their label, "2:registrar").
func (m *Metrics) Counts() (Counts, error) {
	out := Counts{Messages: []MessageCount{}, Stages: []StageCount{}}
	if m == nil {
		return out, nil
	}
	families, err := m.Registry.Gather()
	if err != nil {
		return out, err
	}
	stages := map[string]*StageCount{}
	stage := func(metric *dto.Metric) *StageCount {
		name := label(metric, "stage")
		s, ok := stages[name]
		if !ok {
			s = &StageCount{Stage: name, Verdicts: map[string]uint64{}}
			stages[name] = s
		}
		return s
	}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			n := uint64(metric.GetCounter().GetValue())
			switch f.GetName() {
			case "switchboard_sip_messages_total":
				if label(metric, "class") == "" {
					out.Messages = append(out.Messages, MessageCount{label(metric, "direction"), label(metric, "method"), 0, n})
				}
			case "switchboard_sip_responses_total":
				code, _ := strconv.Atoi(label(metric, "code"))
				if code == 0 {
					code = -1
				}
				out.Messages = append(out.Messages, MessageCount{label(metric, "direction"), label(metric, "method"), code, n})
			case "switchboard_stage_messages_total":
				if label(metric, "direction") == "request" {
					stage(metric).Requests = n
				} else {
					stage(metric).Responses = n
				}
			case "switchboard_stage_verdicts_total":
				if n > 0 {
					stage(metric).Verdicts[label(metric, "verdict")] = n
				}
			case "switchboard_rule_matches_total":
				stage(metric).RuleMatches = n
			case "switchboard_rule_failures_total":
				stage(metric).RuleFailures = n
			}
		}
	}
	sort.Slice(out.Messages, func(i, j int) bool {
		a, b := out.Messages[i], out.Messages[j]
		if a.Direction != b.Direction {
			return a.Direction < b.Direction
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Code < b.Code
	})
	for _, s := range stages {
		out.Stages = append(out.Stages, *s)
	}
	sort.Slice(out.Stages, func(i, j int) bool {
		a, b := position(out.Stages[i].Stage), position(out.Stages[j].Stage)
		if a != b {
			return a < b
		}
		return out.Stages[i].Stage < out.Stages[j].Stage
	})
	return out, nil
}

// position is the number in a stage's label, "3:rewrite".
func position(label string) int {
	num, _, _ := strings.Cut(label, ":")
	n, _ := strconv.Atoi(num)
	return n
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
