package ha1file

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	md5 := strings.Repeat("a", 32)
	sha := strings.Repeat("B", 64)
	tests := []struct {
		data    string
		entries []Entry
		err     string
	}{
		{data: "# comment\n\nalice:example.org:" + md5 + ":-\n", entries: []Entry{{Line: 3, User: "alice", Realm: "example.org", MD5: md5}}},
		{data: "bob::-:" + sha, entries: []Entry{{Line: 1, User: "bob", SHA256: strings.ToLower(sha)}}},
		{data: "alice:example.org:" + md5, err: "f.txt:1: 3 fields, want 4"},
		{data: "alice:example.org:xyz:-", err: `f.txt:1: user "alice": the MD5 hash "xyz" is not 32 hex digits or "-"`},
		{data: "alice:example.org:-:" + md5, err: `the SHA-256 hash`},
		{data: "alice:example.org:-:-", err: `f.txt:1: user "alice" has no hash`},
		{data: ":example.org:" + md5 + ":-", err: "f.txt:1: the user name is empty"},
	}
	for i, tc := range tests {
		entries, errs := Parse(tc.data, "f.txt")
		if tc.err != "" {
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.err) {
				t.Errorf("test %d: errors %v, want one with %q", i, errs, tc.err)
			}
			continue
		}
		if len(errs) != 0 || len(entries) != len(tc.entries) {
			t.Errorf("test %d: %v %v, want %v", i, entries, errs, tc.entries)
			continue
		}
		for j := range entries {
			if entries[j] != tc.entries[j] {
				t.Errorf("test %d: entry %d %+v, want %+v", i, j, entries[j], tc.entries[j])
			}
		}
	}
}
