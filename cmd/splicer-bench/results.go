package main

import (
	"slices"
	"strings"
)

// sample is one round's outcome for one target and metric.
type sample struct {
	value  float64
	failed bool
}

// startKey names a target started with one suite's routes: a proxy may
// start with one suite's and not the other's.
type startKey struct {
	target string
	suite  suite
}

// results holds everything a run measured. Each (target, metric) gets one
// sample per round in which its test ran, in round order.
type results struct {
	samples map[string]*[metricCount][]sample
	// skipped holds, per target, why it has no values at all: a missing
	// program. failed holds, per target and suite, why the suite's rows
	// have none: a proxy that would not start with its routes.
	skipped map[string]string
	failed  map[startKey]string
	notes   []string // per-measurement remarks and caps, in order
	// capacity is the outcome of the extra splicer idle check, "" if not run.
	capacity string
}

// newResults returns empty results.
func newResults() *results {
	return &results{
		samples: make(map[string]*[metricCount][]sample),
		skipped: make(map[string]string),
		failed:  make(map[startKey]string),
	}
}

// of returns the target's samples, creating them on first use.
func (r *results) of(target string) *[metricCount][]sample {
	s, ok := r.samples[target]
	if !ok {
		s = new([metricCount][]sample)
		r.samples[target] = s
	}
	return s
}

// record adds one round's values for a target.
func (r *results) record(target string, values map[metric]float64) {
	s := r.of(target)
	for m, v := range values {
		s[m] = append(s[m], sample{value: v})
	}
}

// fail marks one round of a target's metrics failed. Direct never has
// values for proxy-only metrics, so those stay empty rather than failed.
func (r *results) fail(target string, ms []metric) {
	s := r.of(target)
	for _, m := range ms {
		if target == targetDirect && m.spec().proxyOnly {
			continue
		}
		s[m] = append(s[m], sample{failed: true})
	}
}

// median returns the median of the target's successful samples for m, and
// whether there was any.
func (r *results) median(target string, m metric) (float64, bool) {
	s, ok := r.samples[target]
	if !ok {
		return 0, false
	}
	var vs []float64
	for _, x := range s[m] {
		if !x.failed {
			vs = append(vs, x.value)
		}
	}
	return median(vs)
}

// cell is the table text for a target and metric: the median, "failed"
// when every round failed, "-" when there is nothing to show (a target
// without UDP on a UDP row, say), with "*" when some rounds failed.
func (r *results) cell(target string, m metric) string {
	s, ok := r.samples[target]
	if !ok || len(s[m]) == 0 {
		if _, failed := r.failed[startKey{target, m.spec().suite}]; failed {
			return "failed"
		}
		return "-"
	}
	v, ok := r.median(target, m)
	if !ok {
		return "failed"
	}
	text := m.spec().format(v)
	if slices.ContainsFunc(s[m], func(x sample) bool { return x.failed }) {
		text += "*"
	}
	return text
}

// rounds is the target's per-round values for m, "x" for a failed round.
func (r *results) rounds(target string, m metric) string {
	s, ok := r.samples[target]
	if !ok {
		return ""
	}
	parts := make([]string, len(s[m]))
	for i, x := range s[m] {
		if x.failed {
			parts[i] = "x"
		} else {
			parts[i] = m.spec().format(x.value)
		}
	}
	return strings.Join(parts, " ")
}

// anyRoundFailed reports whether any round of any test failed.
func (r *results) anyRoundFailed() bool {
	for _, s := range r.samples {
		for _, ss := range s {
			if slices.ContainsFunc(ss, func(x sample) bool { return x.failed }) {
				return true
			}
		}
	}
	return false
}

// median returns the median of vs (the mean of the middle two for an even
// count) and false when vs is empty. It sorts a copy.
func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid], true
	}
	return (s[mid-1] + s[mid]) / 2, true
}
