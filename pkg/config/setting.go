package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// setting is one value as written in the TOML text or given to the Builder;
// a nil *setting means the key was not set, which is how defaults and the
// "only applies to tcp/udp" rules tell an explicit value from an absent one.
//
// Decoding into a setting never fails: a value of the wrong type keeps its
// error, so that resolve reports it with its path and line along with every
// other problem, instead of the TOML decoder stopping at the first one.
type setting[T any, P parser[T]] struct {
	v   T
	err error
}

// parser converts one decoded TOML value into a T.
type parser[T any] interface {
	parse(data any) (T, error)
}

// UnmarshalTOML implements toml.Unmarshaler; it always returns nil, see
// setting.
func (s *setting[T, P]) UnmarshalTOML(data any) error {
	var p P
	s.v, s.err = p.parse(data)
	return nil
}

// The setting kinds of the schema.
type (
	intSetting      = setting[int, intParser]
	boolSetting     = setting[bool, boolParser]
	stringSetting   = setting[string, stringParser]
	floatSetting    = setting[float64, floatParser]
	durationSetting = setting[time.Duration, durationParser]
	sizeSetting     = setting[int, sizeParser]
	listSetting     = setting[[]string, listParser]
)

type intParser struct{}

func (intParser) parse(data any) (int, error) {
	n, ok := data.(int64)
	if !ok {
		return 0, fmt.Errorf("must be an integer, got %s", tomlType(data))
	}
	return int(n), nil
}

type boolParser struct{}

func (boolParser) parse(data any) (bool, error) {
	b, ok := data.(bool)
	if !ok {
		return false, fmt.Errorf("must be true or false, got %s", tomlType(data))
	}
	return b, nil
}

// floatParser accepts a float or an integer (log_sample = 1).
type floatParser struct{}

func (floatParser) parse(data any) (float64, error) {
	switch v := data.(type) {
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	}
	return 0, fmt.Errorf("must be a number, got %s", tomlType(data))
}

type stringParser struct{}

func (stringParser) parse(data any) (string, error) {
	s, ok := data.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, got %s", tomlType(data))
	}
	return s, nil
}

// durationParser accepts only strings: a bare integer would leave the
// reader guessing between seconds and nanoseconds.
type durationParser struct{}

func (durationParser) parse(data any) (time.Duration, error) {
	s, ok := data.(string)
	if !ok {
		return 0, fmt.Errorf(`must be a duration string such as "500ms" or "2s", got %s`, tomlType(data))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`invalid duration %q; write a number with a unit, such as "500ms", "2s" or "1h"`, s)
	}
	return d, nil
}

// sizeParser accepts an integer number of bytes or a string with a unit.
type sizeParser struct{}

func (sizeParser) parse(data any) (int, error) {
	switch v := data.(type) {
	case int64:
		return int(v), nil
	case string:
		return parseSize(v)
	}
	return 0, fmt.Errorf(`must be a number of bytes or a string such as "64KiB", got %s`, tomlType(data))
}

// sizeUnits are the units parseSize accepts: binary (KiB = 1024) and
// decimal (KB = 1000), spelled exactly so that "kb" or "Kb" is not silently
// read as either.
var sizeUnits = map[string]int{
	"B":   1,
	"KB":  1000,
	"MB":  1000 * 1000,
	"GB":  1000 * 1000 * 1000,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
}

// parseSize reads a size such as "64KiB", "1 MiB" or "4096B".
func parseSize(s string) (int, error) {
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	unit, ok := sizeUnits[strings.TrimSpace(s[digits:])]
	if digits == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q; write a number of bytes, or a number with a unit: B, KB, MB, GB, KiB, MiB, GiB", s)
	}
	n, err := strconv.Atoi(s[:digits])
	if err != nil || n > math.MaxInt/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}

// formatSize shows a byte count in the largest unit that divides it, the
// way an operator would write it.
func formatSize(n int) string {
	for _, u := range []struct {
		name string
		size int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.Itoa(n/u.size) + u.name
		}
	}
	return strconv.Itoa(n) + "B"
}

// listParser accepts one string or an array of strings, so that the common
// single address needs no brackets.
type listParser struct{}

func (listParser) parse(data any) ([]string, error) {
	switch v := data.(type) {
	case string:
		return []string{v}, nil
	case []any:
		list := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("must be a string or an array of strings, got %s in the array", tomlType(e))
			}
			list[i] = s
		}
		return list, nil
	}
	return nil, fmt.Errorf("must be a string or an array of strings, got %s", tomlType(data))
}

// tomlType names the TOML type of a decoded value for error messages.
func tomlType(data any) string {
	switch data.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any, []map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", data)
}
