package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The instructions mode of bench-check counts the instructions one
// operation of each benchmark executes, under valgrind's callgrind: a count
// that does not depend on what else the machine runs, where a time does.
// One benchmark runs twice with fixed iteration counts, n and 2n
// (-test.benchtime=Nx); the difference of the two totals, divided by n, is
// the cost of n operations without the process's start, the benchmark's
// set-up and its first b.N=1 run, which both totals share. What remains
// variable (the garbage collector, the scheduler) is measured by repeating
// each count, and a change counts only beyond that spread.

// benchLine matches a result line of a benchmark run:
// "BenchmarkPick/maglev/n=4/serial  1000  25.1 ns/op ...".
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([0-9.]+) ns/op`)

// callgrindTotal matches callgrind's summary on its standard error.
var callgrindTotal = regexp.MustCompile(`Collected : (\d+)`)

// instrSample is the cost of one operation of one benchmark, in each
// repetition of its measurement.
type instrSample struct {
	name   string // full name, as BenchmarkPick/maglev/n=4/serial
	perOp  []float64
	iters  int // n of the two runs n and 2n
	failed string
}

// median returns the median of the samples.
func (s instrSample) median() float64 {
	v := append([]float64(nil), s.perOp...)
	sort.Float64s(v)
	if len(v) == 0 {
		return math.NaN()
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// spread returns the range of the samples as a fraction of their median.
func (s instrSample) spread() float64 {
	if len(s.perOp) == 0 {
		return math.Inf(1)
	}
	lo, hi := s.perOp[0], s.perOp[0]
	for _, v := range s.perOp {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return (hi - lo) / s.median()
}

// instrRow compares one benchmark's instruction counts.
type instrRow struct {
	name       string
	base, head instrSample
	hasBase    bool
}

// delta is the relative change of the medians, > 0 being more
// instructions.
func (r instrRow) delta() float64 { return r.head.median()/r.base.median() - 1 }

// regressed reports whether head costs more than threshold over base
// beyond the noise: the medians differ by more than threshold, and every
// head sample is above every base sample by more than the noise of the two
// sides together.
func (r instrRow) regressed(threshold float64) bool {
	if !r.hasBase || r.base.failed != "" || r.head.failed != "" {
		return false
	}
	lowHead, highBase := math.Inf(1), math.Inf(-1)
	for _, v := range r.head.perOp {
		lowHead = math.Min(lowHead, v)
	}
	for _, v := range r.base.perOp {
		highBase = math.Max(highBase, v)
	}
	return r.delta() > threshold && lowHead > highBase
}

// listBenchmarks runs the benchmarks of h once, briefly and natively, and
// returns each one's full name and its time per op.
func (t *benchTree) listBenchmarks(ctx context.Context, h hotPath) (map[string]float64, error) {
	bin, ok := t.bins[h.pkg]
	if !ok {
		return nil, nil
	}
	cmd := exec.CommandContext(ctx, bin, "-test.run=^$", "-test.bench="+h.bench, "-test.benchtime=20ms", "-test.count=1", "-test.cpu=1")
	cmd.Dir = filepath.Join(t.dir, h.pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %v\n%s", h.pkg, h.bench, t.label, err, stderr.String())
	}
	found := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			ns, _ := strconv.ParseFloat(m[3], 64)
			found[m[1]] = ns
		}
	}
	return found, nil
}

// exactPattern returns the -test.bench pattern that selects only the
// benchmark named full.
func exactPattern(full string) string {
	parts := strings.Split(full, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// itersFor picks n so that one native run of n operations takes about
// 20 ms (callgrind runs it some fifty times slower), and at least least.
func itersFor(nsPerOp float64, least int) int {
	if least <= 0 {
		least = 200
	}
	if nsPerOp <= 0 {
		return least
	}
	n := int(20e6 / nsPerOp)
	return min(max(n, least), 400000)
}

// callgrind runs one benchmark of bin for n iterations under callgrind and
// returns the instructions the whole process executed. The runtime is
// told not to use RDTSCP (valgrind 3.19 cannot decode it, and the runtime
// reads the clock with it at moments of its own choosing), not to preempt
// with signals (valgrind handles them poorly; one CPU needs none), and not
// to collect garbage (a collection falling in one of the two runs and not
// the other would be counted as the benchmark's: a run is at most some
// 10 ms of work, so its garbage stays small). A run that valgrind aborts
// is tried again, twice.
func callgrind(ctx context.Context, bin, dir, pattern string, n int, count []string) (uint64, error) {
	var last error
	for try := 0; try < 3; try++ {
		args := []string{"--tool=callgrind", "--callgrind-out-file=/dev/null"}
		for _, f := range count {
			args = append(args, "--toggle-collect="+f)
		}
		args = append(args, bin, "-test.run=^$", "-test.bench="+pattern, fmt.Sprintf("-test.benchtime=%dx", n), "-test.count=1", "-test.cpu=1")
		cmd := exec.CommandContext(ctx, "valgrind", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1", "GOMAXPROCS=1", "GOGC=off")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		m := callgrindTotal.FindSubmatch(stderr.Bytes())
		if err == nil && m != nil && bytes.Contains(out, []byte("PASS")) {
			return strconv.ParseUint(string(m[1]), 10, 64)
		}
		last = fmt.Errorf("valgrind %s -test.bench=%s: %v", filepath.Base(bin), pattern, err)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	return 0, last
}

// measureInstructions counts the instructions per op of one benchmark,
// repeat times (only those of the functions count, when given).
func measureInstructions(ctx context.Context, bin, dir, name string, n, repeat int, count []string) instrSample {
	s := instrSample{name: name, iters: n}
	pattern := exactPattern(name)
	for i := 0; i < repeat; i++ {
		one, err := callgrind(ctx, bin, dir, pattern, n, count)
		if err != nil {
			s.failed = err.Error()
			return s
		}
		two, err := callgrind(ctx, bin, dir, pattern, 2*n, count)
		if err != nil {
			s.failed = err.Error()
			return s
		}
		s.perOp = append(s.perOp, (float64(two)-float64(one))/float64(n))
	}
	return s
}

// runInstructionCheck is bench-check -mode instructions, on the two trees
// whose test binaries are built.
func runInstructionCheck(ctx context.Context, base, head *benchTree, opts benchOptions, stdout io.Writer) error {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return fmt.Errorf("-mode instructions needs valgrind (Debian package valgrind): %w", err)
	}
	var rows []instrRow
	start := time.Now()
	for _, h := range opts.paths {
		names, err := head.listBenchmarks(ctx, h)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("no benchmark of %s matched %q: update hotPaths in cmd/splicer-audit/benchcheck.go", h.pkg, h.bench)
		}
		baseNames, err := base.listBenchmarks(ctx, h)
		if err != nil {
			return err
		}
		sorted := make([]string, 0, len(names))
		for name := range names {
			sorted = append(sorted, name)
		}
		sort.Strings(sorted)
		for _, name := range sorted {
			n := itersFor(names[name], h.minIters)
			r := instrRow{name: strings.TrimPrefix(name, "Benchmark")}
			r.head = measureInstructions(ctx, head.bins[h.pkg], filepath.Join(head.dir, h.pkg), name, n, opts.repeat, h.count)
			if _, ok := baseNames[name]; ok {
				r.hasBase = true
				r.base = measureInstructions(ctx, base.bins[h.pkg], filepath.Join(base.dir, h.pkg), name, n, opts.repeat, h.count)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(stdout, "%s\n", instrLine(r))
			rows = append(rows, r)
		}
	}
	fmt.Fprintf(stdout, "measured %d benchmarks in %v\n", len(rows), time.Since(start).Round(time.Second))
	var failed, regressed, noisy []instrRow
	for _, r := range rows {
		switch {
		case r.head.failed != "" || (r.hasBase && r.base.failed != ""):
			failed = append(failed, r)
		case r.regressed(opts.threshold):
			regressed = append(regressed, r)
		case r.hasBase && max(r.base.spread(), r.head.spread()) > opts.threshold:
			noisy = append(noisy, r)
		}
	}
	for _, r := range noisy {
		fmt.Fprintf(stdout, "INCONCLUSIVE %s: the counts spread over %.1f%% and %.1f%%, wider than the %.0f%% to detect\n",
			r.name, 100*r.base.spread(), 100*r.head.spread(), 100*opts.threshold)
	}
	for _, r := range failed {
		fmt.Fprintf(stdout, "COULD NOT MEASURE %s: %s%s\n", r.name, r.head.failed, r.base.failed)
	}
	for _, r := range regressed {
		fmt.Fprintf(stdout, "REGRESSION %s: %.0f → %.0f instructions/op (%+.1f%%, beyond the spread of %.1f%% and %.1f%%)\n",
			r.name, r.base.median(), r.head.median(), 100*r.delta(), 100*r.base.spread(), 100*r.head.spread())
	}
	switch {
	case len(regressed) > 0:
		return fmt.Errorf("%w: %d benchmarks execute more than %.0f%% more instructions than the baseline", errFailed, len(regressed), 100*opts.threshold)
	case len(failed) > 0:
		return fmt.Errorf("%w: %d benchmarks could not be measured under valgrind", errFailed, len(failed))
	case len(noisy) > 0:
		return fmt.Errorf("%w: %d benchmarks vary too much from run to run to tell a %.0f%% change: try a larger -repeat", errFailed, len(noisy), 100*opts.threshold)
	}
	fmt.Fprintf(stdout, "no benchmark executes more than %.0f%% more instructions per op than the baseline, beyond its spread\n", 100*opts.threshold)
	return nil
}

// instrLine renders one row for the log.
func instrLine(r instrRow) string {
	if r.head.failed != "" {
		return fmt.Sprintf("%-44s could not measure: %s", r.name, r.head.failed)
	}
	head := fmt.Sprintf("%10.0f ±%4.1f%%", r.head.median(), 100*r.head.spread())
	if !r.hasBase {
		return fmt.Sprintf("%-44s %-18s %s instructions/op (new, no baseline)", r.name, "", head)
	}
	if r.base.failed != "" {
		return fmt.Sprintf("%-44s baseline could not be measured: %s", r.name, r.base.failed)
	}
	return fmt.Sprintf("%-44s %10.0f ±%4.1f%% → %s instructions/op  %+6.1f%%  (n=%d)", r.name, r.base.median(), 100*r.base.spread(), head, 100*r.delta(), r.head.iters)
}
