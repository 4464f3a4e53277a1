package config

import (
	"strings"
	"testing"
)

// TestSetErrors: each mistake in a [[set]] is placed at its key's line
// and column, and an unknown key of [set.check] is told the check's keys.
func TestSetErrors(t *testing.T) {
	const head = "[[set]]\nname = \"pstn\"\n[[set.destination]]\nuri = \"sip:192.0.2.1\"\n"
	tests := []struct {
		name, toml, want string
	}{
		{"unknown key", "[[set]]\nname = \"a\"\nalgoritm = \"weighted\"\n[[set.destination]]\nuri = \"sip:192.0.2.1\"",
			`c.toml:3:1: set 1 (a): algoritm: unknown key, did you mean "algorithm"? (known: name, algorithm,`},
		{"unknown key of the check", head + "[[set]]\nname = \"b\"\n[set.check]\ntimout = \"1s\"\n[[set.destination]]\nuri = \"sip:192.0.2.2\"",
			`c.toml:8:1: set 2 (b): check.timout: unknown key, did you mean "timeout"? (known: interval, timeout, down_after, up_after, alive_codes, from)`},
		{"a check value", head + "[set.check]\ninterval = \"1ms\"",
			`c.toml:6:1: set 1 (pstn): check: interval: 1ms is under 100ms`},
		{"a value", head + "[[set]]\nname = \"b\"\n  attempts = -1\n[[set.destination]]\nuri = \"sip:192.0.2.2\"",
			`c.toml:7:3: set 2 (b): attempts: -1 is not positive`},
		{"a destination's uri", head + "[[set]]\nname = \"b\"\n[[set.destination]]\nuri = \"sip:192.0.2.2\"\n[[set.destination]]\nuri = \"http://x\"",
			`c.toml:10:1: set 2 (b): destination 2: uri: "http://x" is not a sip: or sips: URI`},
		{"an empty set", head + "[[set]]\nname = \"b\"",
			`c.toml:5:3: set 2 (b): destination: none: a set needs at least one [[set.destination]]`},
		{"a name twice", head + "[[set]]\nname = \"pstn\"\n[[set.destination]]\nuri = \"sip:192.0.2.2\"",
			`c.toml:6:1: set 2 (pstn): name: "pstn" is the name of an earlier set`},
		{"an unknown fallback", "[[set]]\nname = \"pstn\"\nfallback = \"pstm\"\n[[set.destination]]\nuri = \"sip:192.0.2.1\"",
			`c.toml:3:1: set 1 (pstn): fallback: unknown set "pstm", did you mean "pstn"? (sets: "pstn")`},
		{"a key of a destination", head + "wieght = 2",
			`c.toml:5:1: set 1 (pstn): destination[0].wieght: unknown key, did you mean "weight"? (known: uri, weight, priority)`},
	}
	for i, tc := range tests {
		_, err := Parse("c.toml", []byte(tc.toml))
		if err == nil {
			t.Errorf("test %d (%s): no error", i, tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d (%s):\n got %s\nwant %s", i, tc.name, err, tc.want)
		}
	}
}
