package stagetest

import (
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// ReadmeSections are the sections every stage's README.md has, in order,
// after its title (`# name`).
var ReadmeSections = []string{"Name", "Description", "Syntax", "Examples", "Metrics"}

// CheckReadme checks a stage's README.md: a title that names the stage
// (`# name`), then the sections of ReadmeSections in order; every toml code
// block under Examples (fenced with ~~~ or ```) a config that builds (with
// the [server] that Chain adds); and a Metrics section that names every
// metric the stage exports and none that Switchboard does not.
//
// What a stage exports is learnt by building each example over Prometheus
// collectors, as the binary does: the metrics with a series labelled with
// the stage (`stage="2:name"`), those its build registered, and
// switchboard_active_calls for a stage that shares a pipeline.CallLister.
// A metric name is a word that starts with switchboard_. The examples are
// built over services of CheckReadme's own, so opts must not hold
// WithServices. CheckReadme reports each mistake with t.Errorf, so that one
// test shows them all.
func CheckReadme(t testing.TB, path string, opts ...Option) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stagetest: %v", err)
	}
	text := string(data)
	title, _, _ := strings.Cut(text, "\n")
	name, ok := strings.CutPrefix(title, "# ")
	name = strings.TrimSpace(name)
	switch _, registered := pipeline.Lookup(name); {
	case !ok:
		t.Errorf("%s: does not start with a title, `# name`", path)
	case !registered:
		t.Errorf("%s: the title names no registered stage: %q", path, name)
		ok = false
	}
	at := 0
	sections := map[string]string{}
	for i, name := range ReadmeSections {
		heading := "\n## " + name + "\n"
		j := strings.Index(text[at:], heading)
		if j < 0 {
			t.Errorf("%s: no section %q after %q", path, "## "+name, previous(i))
			continue
		}
		start := at + j + len(heading)
		end := len(text)
		if k := strings.Index(text[start:], "\n## "); k >= 0 {
			end = start + k
		}
		sections[name] = text[start:end]
		at = start
	}
	examples, ok := sections["Examples"]
	if !ok {
		return
	}
	blocks := tomlBlocks(examples)
	if len(blocks) == 0 {
		t.Errorf("%s: no toml code block under ## Examples", path)
	}
	got := exported{all: map[string]bool{}, stage: map[string]bool{}}
	built := false
	for i, toml := range blocks {
		e, err := exportedBy(t, name, toml, opts...)
		if err != nil {
			t.Errorf("%s: example %d does not build:\n%v\n%s", path, i+1, err, toml)
			continue
		}
		built = true
		maps.Copy(got.all, e.all)
		maps.Copy(got.stage, e.stage)
	}
	if metrics, has := sections["Metrics"]; has && built && ok {
		checkMetrics(t, path, metrics, got)
	}
}

// tomlBlocks returns the code blocks of a Markdown text fenced as toml,
// with ~~~ or ```.
func tomlBlocks(text string) []string {
	var blocks []string
	var block []string
	fence := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "~~~") || strings.HasPrefix(trimmed, "```")):
			fence = trimmed[:3]
			if strings.TrimSpace(trimmed[3:]) != "toml" {
				fence += "-other" // a block of another language: skip it
			}
			block = nil
		case fence != "" && strings.HasPrefix(trimmed, fence[:3]):
			if fence == "~~~" || fence == "```" {
				blocks = append(blocks, strings.Join(block, "\n")+"\n")
			}
			fence = ""
		case fence != "":
			block = append(block, line)
		}
	}
	return blocks
}

func previous(i int) string {
	if i == 0 {
		return "the title"
	}
	return "## " + ReadmeSections[i-1]
}
