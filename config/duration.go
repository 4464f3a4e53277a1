package config

import (
	"fmt"
	"math"
	"reflect"
	"time"
)

// Duration is a time.Duration written in TOML as a string: "30s", "1m30s",
// "500ms".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

var (
	durationType    = reflect.TypeOf(Duration(0))
	stdDurationType = reflect.TypeOf(time.Duration(0))
)

// durationHook decodes "30s" into Duration and time.Duration fields.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType && to != stdDurationType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as \"30s\" or \"1m\"", v)
		}
		if d < 0 {
			return nil, fmt.Errorf("%q is negative", v)
		}
		if to == durationType {
			return Duration(d), nil
		}
		return d, nil
	default:
		return nil, fmt.Errorf("must be a duration written as a string, such as \"30s\" (got %v)", data)
	}
}

// wholeNumberHook refuses a number with a fraction for an integer key:
// mapstructure would cut 2.7 to 2 without a word.
func wholeNumberHook(from, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return data, nil
	}
	if to == durationType || to == stdDurationType {
		return data, nil
	}
	if f, ok := data.(float64); ok && f != math.Trunc(f) {
		return nil, fmt.Errorf("%v is not a whole number", f)
	}
	return data, nil
}
