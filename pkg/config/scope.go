package config

import (
	"fmt"
	"strings"
	"time"
)

// scope reports problems within one table of the config.
type scope struct {
	ps *problems
	// key is the table's indexed path, used to find lines ("frontend[0]";
	// "" for the top level).
	key string
	// label prefixes field names in Problem.Path: "global." or
	// `frontend "pg": `.
	label string
}

// addf records a problem with field, a path relative to the scope's table
// ("weight", "backend[2].weight").
func (s scope) addf(field, format string, args ...any) {
	key := field
	if s.key != "" {
		key = s.key + "." + field
	}
	s.ps.add(key, s.label+field, fmt.Sprintf(format, args...))
}

// warnf records a warning about field, like addf.
func (s scope) warnf(field, format string, args ...any) {
	key := field
	if s.key != "" {
		key = s.key + "." + field
	}
	s.ps.warn(key, s.label+field, fmt.Sprintf(format, args...))
}

func (s scope) between(field string, v, lo, hi int) {
	if v < lo || v > hi {
		s.addf(field, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (s scope) atLeast(field string, v, lo int) {
	if v < lo {
		s.addf(field, "must be at least %d, got %d", lo, v)
	}
}

func (s scope) sizeBetween(field string, v, lo, hi int) {
	if v < lo || v > hi {
		s.addf(field, "must be between %s and %s, got %s", formatSize(lo), formatSize(hi), formatSize(v))
	}
}

func (s scope) positive(field string, d time.Duration) {
	if d <= 0 {
		s.addf(field, "must be positive, got %v", d)
	}
}

func (s scope) durationBetween(field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		s.addf(field, "must be between %v and %v, got %v", lo, hi, d)
	}
}

func (s scope) oneOf(field, v string, valid ...string) {
	for _, ok := range valid {
		if v == ok {
			return
		}
	}
	s.addf(field, "must be one of %s; got %q", strings.Join(valid, ", "), v)
}
