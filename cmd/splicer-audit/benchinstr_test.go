package main

import (
	"regexp"
	"testing"
)

// A change counts as a regression only when the medians differ by more
// than the threshold and the two sides' samples do not overlap.
func TestInstrRowRegressed(t *testing.T) {
	row := func(base, head []float64) instrRow {
		return instrRow{name: "X", hasBase: true, base: instrSample{perOp: base}, head: instrSample{perOp: head}}
	}
	for _, tc := range []struct {
		base, head []float64
		want       bool
	}{
		{[]float64{100, 101, 100}, []float64{110, 111, 110}, true},   // +10%, apart
		{[]float64{100, 101, 100}, []float64{104, 104, 105}, false},  // +4%: under the threshold
		{[]float64{100, 130, 100}, []float64{110, 111, 112}, false},  // +10% but within the base's noise
		{[]float64{110, 111, 110}, []float64{100, 101, 100}, false},  // faster
		{[]float64{100, 100, 100}, []float64{100, 100, 1000}, false}, // one outlier: the median did not move
	} {
		if got := row(tc.base, tc.head).regressed(0.05); got != tc.want {
			t.Errorf("base %v head %v: regressed = %v, want %v", tc.base, tc.head, got, tc.want)
		}
	}
	r := row([]float64{100}, []float64{200})
	r.hasBase = false
	if r.regressed(0.05) {
		t.Error("a benchmark without a baseline regressed")
	}
	r = row([]float64{100}, []float64{200})
	r.head.failed = "valgrind crashed"
	if r.regressed(0.05) {
		t.Error("a failed measurement counted as a regression (it is reported as one that could not be measured)")
	}
}

func TestInstrSampleStats(t *testing.T) {
	s := instrSample{perOp: []float64{110, 90, 100, 105}}
	if m := s.median(); m != 102.5 {
		t.Errorf("median = %v", m)
	}
	if sp := s.spread(); sp != 20/102.5 {
		t.Errorf("spread = %v", sp)
	}
}

// The pattern of one benchmark selects it and none of its siblings, with
// the characters -test.bench would read as a regexp quoted.
func TestExactPattern(t *testing.T) {
	p := exactPattern("BenchmarkHotPath/TryAcquire+Release/serial")
	if p != `^BenchmarkHotPath$/^TryAcquire\+Release$/^serial$` {
		t.Fatalf("pattern %q", p)
	}
	parts := regexp.MustCompile("/").Split(p, -1)
	for i, name := range []string{"BenchmarkHotPath", "TryAcquire+Release", "serial"} {
		if !regexp.MustCompile(parts[i]).MatchString(name) {
			t.Errorf("part %q does not match %q", parts[i], name)
		}
	}
	if regexp.MustCompile(parts[2]).MatchString("parallel") || regexp.MustCompile(parts[0]).MatchString("BenchmarkHotPathX") {
		t.Error("the pattern selects a sibling")
	}
}

func TestBenchLineAndIters(t *testing.T) {
	m := benchLine.FindStringSubmatch("BenchmarkPick/maglev/n=4/serial-2   \t 1000000\t        25.10 ns/op\t       0 B/op")
	if m == nil || m[1] != "BenchmarkPick/maglev/n=4/serial" || m[3] != "25.10" {
		t.Fatalf("match %q", m)
	}
	if m := benchLine.FindStringSubmatch("BenchmarkPump/pipe/16384B \t 500\t 23310 ns/op\t 702.9 MB/s"); m == nil || m[1] != "BenchmarkPump/pipe/16384B" {
		t.Fatalf("match %q", m)
	}
	for _, tc := range []struct {
		ns    float64
		least int
		want  int
	}{{25, 0, 400000}, {100, 0, 200000}, {10000, 0, 2000}, {1e6, 0, 200}, {1e6, 1000, 1000}, {0, 0, 200}} {
		if got := itersFor(tc.ns, tc.least); got != tc.want {
			t.Errorf("itersFor(%v, %d) = %d, want %d", tc.ns, tc.least, got, tc.want)
		}
	}
}
