package stagetest

import (
	"os"
	"strings"
	"testing"
)

// ReadmeSections are the sections every stage's README.md has, in order,
// after its title (`# name`).
var ReadmeSections = []string{"Name", "Description", "Syntax", "Examples", "Metrics"}

// CheckReadme checks a stage's README.md: a title, then the sections of
// ReadmeSections in order, and every toml code block under Examples (fenced
// with ~~~ or ```) a
// config that builds (with the [server] that Chain adds). It reports each
// mistake with t.Errorf, so that one test shows them all.
func CheckReadme(t testing.TB, path string, opts ...Option) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stagetest: %v", err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "# ") {
		t.Errorf("%s: does not start with a title, `# name`", path)
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
	for i, toml := range blocks {
		if _, err := Build(t, toml, opts...); err != nil {
			t.Errorf("%s: example %d does not build:\n%v\n%s", path, i+1, err, toml)
		}
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
