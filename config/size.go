package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Size is a number of bytes written in TOML as a string with a unit,
// "512MiB", "1GiB", "100MB", or as a whole number of bytes.
type Size int64

// sizeUnits are the units a Size may be written in, longest first.
var sizeUnits = []struct {
	name string
	n    int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize reads "512MiB", "1GiB", "100MB" or "4096" (bytes).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	unit := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.name); ok {
			t, unit = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as \"512MiB\" or \"1GiB\"", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n * unit), nil
}

// String writes the size in the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}

var sizeType = reflect.TypeOf(Size(0))

// sizeHook decodes "512MiB" (or a whole number of bytes) into a Size.
func sizeHook(from, to reflect.Type, data any) (any, error) {
	if to != sizeType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseSize(v)
	case int64:
		if v < 0 {
			return nil, fmt.Errorf("%d is negative", v)
		}
		return Size(v), nil
	case float64:
		// TOML's 1e9: a whole number of bytes is as good as an integer.
		if v != math.Trunc(v) || v < 0 || v >= math.MaxInt64 {
			return nil, fmt.Errorf("%v is not a whole number of bytes; write a size such as \"512MiB\"", v)
		}
		return Size(v), nil
	default:
		return nil, fmt.Errorf("must be a size such as \"512MiB\" or \"1GiB\" (got %v)", data)
	}
}
