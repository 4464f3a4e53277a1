package prefix

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		ext, data string
		want      string // the rows as key=value@line, or the error
	}{
		{".csv", "0903,orange\n09,mobile\n", "0903=orange@1 09=mobile@2"},
		{".csv", "# operators\nprefix,set\n\n0903, orange\n", "0903=orange@4"},
		{".CSV", "number,user\n+421212345678,alice\n", "+421212345678=alice@2"},
		{".csv", "0903,orange,extra\n", "line 1: 3 fields, want 2"},
		{".csv", "09,mobile\n0903\n", "line 2: 1 fields, want 2"},
		{".csv", "09,\n", `line 1: "09": empty value`},
		{".csv", "09,\"mob\nile\n", "line 1: extraneous or missing \" in quoted-field"},
		{".toml", "# operators\n\"0903\" = \"orange\"\n'+421' = \"sk\"\n", "0903=orange@2 +421=sk@3"},
		{".toml", "\"0903\" = \"orange\"\n\"09\" = 9\n", `line 2: "09": the value is not a string (Integer)`},
		{".toml", "\"0903\" = \"orange\"\n[sets]\n", "line 2: a table"},
		{".toml", "\"0903\" = \"orange\"\n\"09\" = \n", "line 2: "},
		{".toml", "a.b = \"c\"\n", "line 1: dotted key"},
		{".toml", "\"09\" = \"\"\n", `line 1: "09": empty value`},
		{".txt", "09,mobile\n", `unknown format ".txt"`},
	}
	for i, tc := range tests {
		entries, err := Parse(tc.ext, []byte(tc.data))
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			var rows []string
			for _, e := range entries {
				rows = append(rows, fmt.Sprintf("%s=%s@%d", e.Key, e.Value, e.Line))
			}
			got = strings.Join(rows, " ")
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("test %d: Parse(%s) = %q, want %q", i, tc.ext, got, tc.want)
		}
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data, want string
	}{
		{"routes.csv", "09,mobile\n0903,orange\n09,other\n", `routes.csv:3: "09" is given twice (first on line 1)`},
		{"routes.toml", "\"09\" = \"mobile\"\n\"0x9\" = \"bad\"\n", `routes.toml:2: "0x9" is not a number`},
		{"missing.csv", "", "no such file"},
	}
	for i, tc := range tests {
		path := filepath.Join(dir, tc.name)
		if tc.data != "" {
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: Load error %v, want %q", i, err, tc.want)
		}
	}
}
