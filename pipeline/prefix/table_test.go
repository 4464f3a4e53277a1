package prefix

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func table(t testing.TB, rows ...string) *Table {
	t.Helper()
	var entries []Entry
	for i, r := range rows {
		k, v, _ := strings.Cut(r, "=")
		entries = append(entries, Entry{Key: k, Value: v, Line: i + 1})
	}
	tab, err := NewTable(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestLongest(t *testing.T) {
	tab := table(t, "0=national", "09=mobile", "0903=orange", "+421=sk", "+4219=skmobile", "*98=voicemail")
	tests := []struct {
		number, want string
	}{
		{"0903123456", "orange"},
		{"0904123456", "mobile"},
		{"0212345678", "national"},
		{"09", "mobile"},
		{"0", "national"},
		{"+421903123456", "skmobile"},
		{"+421212345678", "sk"},
		{"*98", "voicemail"},
		{"*9", ""},
		{"1234", ""},
		{"", ""},
		{"+43", ""},
		{"09a03", "mobile"}, // the walk stops at the first character that is not a dial string's
		{"0903;isub=1", "orange"},
	}
	for i, tc := range tests {
		e, ok := tab.Longest(tc.number)
		if ok != (tc.want != "") || e.Value != tc.want {
			t.Errorf("test %d: Longest(%q) = %q, %v; want %q", i, tc.number, e.Value, ok, tc.want)
		}
	}
}

func TestExact(t *testing.T) {
	tab := table(t, "+421212345678=alice", "+421212345679=bob", "0212=short")
	tests := []struct {
		number, want string
	}{
		{"+421212345678", "alice"},
		{"+421212345679", "bob"},
		{"+42121234567", ""},
		{"+4212123456789", ""},
		{"0212", "short"},
		{"021", ""},
		{"", ""},
		{"alice", ""},
	}
	for i, tc := range tests {
		e, ok := tab.Exact(tc.number)
		if ok != (tc.want != "") || e.Value != tc.want {
			t.Errorf("test %d: Exact(%q) = %q, %v; want %q", i, tc.number, e.Value, ok, tc.want)
		}
	}
}

func TestNewTableErrors(t *testing.T) {
	tests := []struct {
		entries []Entry
		want    string
	}{
		{[]Entry{{Key: "09", Value: "a", Line: 1}, {Key: "09", Value: "b", Line: 3}}, `line 3: "09" is given twice (first on line 1)`},
		{[]Entry{{Key: "09x", Value: "a", Line: 2}}, `line 2: "09x" is not a number: "x" is not a digit`},
		{[]Entry{{Key: "", Value: "a", Line: 4}}, `line 4: empty number`},
	}
	for i, tc := range tests {
		_, err := NewTable(tc.entries)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("test %d: error %v, want %q", i, err, tc.want)
		}
	}
}

// BenchmarkPrefixLookup looks numbers up in a table of 10,000 prefixes of
// 3 to 8 digits, as an LCR table of a country's operators would have.
func BenchmarkPrefixLookup(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var entries []Entry
	for len(entries) < 10000 {
		k := fmt.Sprintf("+%09d", r.IntN(1e9))[:4+r.IntN(6)]
		if !seen[k] {
			seen[k] = true
			entries = append(entries, Entry{Key: k, Value: fmt.Sprintf("set%d", r.IntN(20))})
		}
	}
	tab, err := NewTable(entries)
	if err != nil {
		b.Fatal(err)
	}
	numbers := make([]string, 1024)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("+%012d", r.Int64N(1e12))
	}
	b.ReportAllocs()
	b.ResetTimer()
	found := 0
	for i := 0; i < b.N; i++ {
		if _, ok := tab.Longest(numbers[i%len(numbers)]); ok {
			found++
		}
	}
	if found == 0 {
		b.Fatal("no number matched a prefix")
	}
}
