package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// hotPath is one group of micro-benchmarks bench-check holds to the
// baseline: a package and a -bench pattern.
type hotPath struct {
	pkg   string // ./path of the package
	bench string // -test.bench pattern
	what  string
	// minIters is the least n of the instructions mode (0: 200): more for
	// benchmarks whose set-up is heavy, so that n operations outweigh what
	// varies in the process around them.
	minIters int
	// count, when set, are the functions whose instructions the
	// instructions mode counts (callgrind's --toggle-collect), instead of
	// the whole process's: for a benchmark whose loop makes system calls,
	// the runtime's other threads (sysmon wakes by the clock, and a run
	// under valgrind takes a varying time) would otherwise add a varying
	// share. Each must be a function that does not switch goroutines.
	count []string
}

// hotPaths are the benchmarks of the hot paths: picks, the timer wheel,
// one pump step of the relay, the config load, a scrape.
var hotPaths = []hotPath{
	{"./pkg/balance", "^BenchmarkPick$/^(roundrobin|leastconn|p2c|maglev)$/^n=(4|1024)$/^serial$", "Pick per strategy, 4 and 1024 backends", 0, nil},
	{"./pkg/backend", "^BenchmarkHotPath$/./^serial$", "the per-connection backend counters", 0, nil},
	{"./l4/internal/timer", "^Benchmark(ScheduleStop|Reschedule|Advance100k)$", "the timer wheel", 1000, nil},
	{"./l4/internal/splice", "^BenchmarkPump$", "one relay pump step on a socketpair: the carriers' Fill and Drain", 5000, []string{
		"*/l4/internal/splice.(*Buffer).Fill", "*/l4/internal/splice.(*Buffer).Drain",
		"*/l4/internal/splice.(*Pipe).Fill", "*/l4/internal/splice.(*Pipe).Drain",
	}},
	{"./pkg/config", "^BenchmarkParseExample$", "loading config.toml.example", 0, nil},
	{"./pkg/metrics", "^BenchmarkCollect$", "a Prometheus scrape", 0, nil},
	{"./pkg/admin", "^BenchmarkStatsJSON$", "the admin stats JSON", 0, nil},
}

// benchOptions are the settings of one bench-check.
type benchOptions struct {
	base      string        // git revision of the baseline
	count     int           // runs of each benchmark on each side
	benchtime time.Duration // -test.benchtime of each run
	threshold float64       // a slowdown beyond this fraction is a regression...
	alpha     float64       // ...when benchstat's test gives p below this
	confirm   bool          // re-run suspected regressions before failing
	benchstat string        // module/cmd@version of benchstat
	keep      string        // keep the raw results in this directory
	mode      string        // "time" (benchstat) or "instructions" (callgrind)
	repeat    int           // instructions mode: measurements of each benchmark on each side
	paths     []hotPath     // the hot paths to measure
}

// benchRow is one benchmark and unit compared by benchstat.
type benchRow struct {
	Pkg        string // import path
	Name       string // without the Benchmark prefix, as Pick/maglev/n=4/serial
	Unit       string
	Base, Head float64 // medians
	Delta      float64 // (head-base)/base, oriented so that > 0 is worse
	P          float64 // p-value of benchstat's Mann-Whitney U test; 1 when it has none
	N          int     // samples per side
	HasBase    bool
	Spread     float64 // the wider of the two sides' 95% confidence intervals around the median, as a fraction of it (+Inf when unknown)
}

// Inconclusive reports whether the row's spread is too wide for a change
// of threshold to show: the run cannot tell whether it regressed.
func (r benchRow) Inconclusive(threshold, alpha float64) bool {
	return r.HasBase && !r.Regressed(threshold, alpha) && r.Spread > threshold
}

// Regressed reports whether the row is worse by more than threshold with
// p below alpha.
func (r benchRow) Regressed(threshold, alpha float64) bool {
	return r.HasBase && r.Delta > threshold && r.P < alpha
}

// higherIsBetter reports whether a benchstat unit grows as things improve:
// throughputs (B/s, and the .../s of b.ReportMetric) do, costs per op do not.
func higherIsBetter(unit string) bool { return strings.HasSuffix(unit, "/s") }

// pValue matches benchstat's "p=0.002 n=10" (or "n=10+9").
var pValue = regexp.MustCompile(`^p=([0-9.]+) n=(\d+)`)

// parseBenchstatCSV reads the output of `benchstat -format csv base head`:
// one table per unit, a row per benchmark.
func parseBenchstatCSV(r io.Reader) ([]benchRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	var rows []benchRow
	unit, pkg := "", ""
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("benchstat csv: %w", err)
		}
		if len(rec) == 1 && strings.HasPrefix(rec[0], "pkg: ") {
			pkg = strings.TrimPrefix(rec[0], "pkg: ")
			continue
		}
		switch {
		case len(rec) < 2 || rec[0] == "geomean":
			continue
		case rec[0] == "" && len(rec) >= 6 && rec[5] == "vs base":
			unit = rec[1]
			continue
		case rec[0] == "" || unit == "":
			// The header naming the inputs, and goos/goarch/pkg lines.
			continue
		}
		row := benchRow{Pkg: pkg, Name: rec[0], Unit: unit, P: 1}
		base, errb := strconv.ParseFloat(rec[1], 64)
		if len(rec) < 4 {
			continue
		}
		head, errh := strconv.ParseFloat(rec[3], 64)
		if errh != nil {
			continue // in the baseline only: a benchmark gone or renamed
		}
		row.Base, row.Head, row.HasBase = base, head, errb == nil
		row.Spread = math.Max(parseSpread(rec[2]), parseSpread(rec[4]))
		if row.HasBase {
			switch {
			case base == head:
				row.Delta = 0
			case base == 0:
				row.Delta = math.Inf(1)
			default:
				row.Delta = head/base - 1
			}
			if higherIsBetter(unit) {
				if head == 0 {
					row.Delta = math.Inf(1)
				} else {
					row.Delta = base/head - 1
				}
			}
		}
		if len(rec) >= 7 {
			if m := pValue.FindStringSubmatch(rec[6]); m != nil {
				row.P, _ = strconv.ParseFloat(m[1], 64)
				row.N, _ = strconv.Atoi(m[2])
			}
		}
		rows = append(rows, row)
	}
}

// parseSpread reads benchstat's confidence interval column ("3%"), +Inf
// for "∞", "?" or anything else.
func parseSpread(s string) float64 {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, "%") {
		return math.Inf(1)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return math.Inf(1)
	}
	return v / 100
}

// benchTree is one side of the comparison: a source tree and the test
// binaries built from it.
type benchTree struct {
	label string
	dir   string            // module root of the tree
	bins  map[string]string // package → test binary; absent when the tree lacks the package
	out   bytes.Buffer      // the benchmark output of every run
}

// exportRevision writes the tree of rev into dir (git archive), without
// touching the repository's worktrees or index.
func exportRevision(ctx context.Context, rev, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("baseline %q is not a commit of this repository: %v", rev, err)
	}
	commit := strings.TrimSpace(string(out))
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", commit)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var stderr bytes.Buffer
	archive.Stderr, untar.Stderr = &stderr, &stderr
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		untar.Wait()
		return "", fmt.Errorf("git archive %s: %v: %s", commit, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("tar: %v: %s", err, stderr.String())
	}
	return commit, nil
}

// build compiles the test binary of every hot-path package the tree has.
func (t *benchTree) build(ctx context.Context, binDir string, paths []hotPath) error {
	t.bins = map[string]string{}
	for _, h := range paths {
		if _, err := os.Stat(filepath.Join(t.dir, h.pkg)); err != nil {
			continue
		}
		if _, done := t.bins[h.pkg]; done {
			continue
		}
		bin := filepath.Join(binDir, t.label+"-"+strings.ReplaceAll(strings.TrimPrefix(h.pkg, "./"), "/", "-")+".test")
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, h.pkg)
		cmd.Dir = t.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s of %s: %v\n%s", h.pkg, t.label, err, out)
		}
		t.bins[h.pkg] = bin
	}
	return nil
}

// runOnce runs the benchmarks of h once in this tree, from the package's
// directory as go test would, and appends their output.
func (t *benchTree) runOnce(ctx context.Context, h hotPath, benchtime time.Duration) error {
	bin, ok := t.bins[h.pkg]
	if !ok {
		return nil
	}
	cmd := exec.CommandContext(ctx, bin, "-test.run=^$", "-test.bench="+h.bench, "-test.benchmem",
		"-test.benchtime="+benchtime.String(), "-test.count=1", "-test.cpu=1")
	cmd.Dir = filepath.Join(t.dir, h.pkg)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &t.out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s in %s: %v\n%s", h.pkg, h.bench, t.label, err, stderr.String())
	}
	return nil
}

// measure runs every benchmark of paths count times on each side,
// interleaved: base then head, then head then base, so that a change in
// the machine's load meanwhile falls on both sides alike.
func measure(ctx context.Context, base, head *benchTree, paths []hotPath, opts benchOptions, log io.Writer) error {
	for round := 0; round < opts.count; round++ {
		fmt.Fprintf(log, "round %d of %d\n", round+1, opts.count)
		for _, h := range paths {
			sides := []*benchTree{base, head}
			if round%2 == 1 {
				sides[0], sides[1] = head, base
			}
			for _, s := range sides {
				if err := s.runOnce(ctx, h, opts.benchtime); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// compare runs benchstat on the two sides' results.
func compare(ctx context.Context, base, head *benchTree, opts benchOptions, dir string) ([]benchRow, string, error) {
	bf, hf := filepath.Join(dir, "base.txt"), filepath.Join(dir, "head.txt")
	if err := os.WriteFile(bf, base.out.Bytes(), 0o644); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(hf, head.out.Bytes(), 0o644); err != nil {
		return nil, "", err
	}
	alpha := strconv.FormatFloat(opts.alpha, 'g', -1, 64)
	csvOut, stderr, err := goRun(ctx, opts.benchstat, "-format", "csv", "-alpha", alpha, "base="+bf, "head="+hf)
	if err != nil {
		return nil, "", fmt.Errorf("benchstat: %v: %s", err, stderr)
	}
	rows, err := parseBenchstatCSV(bytes.NewReader(csvOut))
	if err != nil {
		return nil, "", err
	}
	text, stderr, err := goRun(ctx, opts.benchstat, "-alpha", alpha, "base="+bf, "head="+hf)
	if err != nil {
		return nil, "", fmt.Errorf("benchstat: %v: %s", err, stderr)
	}
	return rows, string(text), nil
}

// runBenchCheck is `make bench-check`.
func runBenchCheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench-check")
	opts := benchOptions{}
	fs.StringVar(&opts.base, "base", "", "the baseline: a git `revision` (default: the one in "+baselineFile+")")
	fs.IntVar(&opts.count, "count", 10, "runs of each benchmark on each side")
	fs.DurationVar(&opts.benchtime, "benchtime", 200*time.Millisecond, "-test.benchtime of each run")
	fs.Float64Var(&opts.threshold, "threshold", 0.05, "fail on a slowdown beyond this `fraction`...")
	fs.Float64Var(&opts.alpha, "alpha", 0.01, "...that benchstat's test finds significant at this level")
	fs.BoolVar(&opts.confirm, "confirm", true, "measure suspected regressions again, and fail only on those that repeat")
	fs.StringVar(&opts.benchstat, "benchstat", defaultBenchstat, "benchstat to go run, as `module/cmd@version`")
	fs.StringVar(&opts.keep, "keep", "", "keep the raw benchmark output in `DIR`")
	fs.StringVar(&opts.mode, "mode", "time", "`time`: interleaved timings compared with benchstat's test; instructions: instructions per op counted under valgrind's callgrind, which the machine's load does not change")
	only := fs.String("only", "", "measure only the hot paths whose package matches this `regexp` (as timer or pkg/balance)")
	fs.IntVar(&opts.repeat, "repeat", 3, "instructions mode: measure each benchmark on each side this many times; a change counts beyond their spread")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: splicer-audit bench-check [flags]\n\nRuns the micro-benchmarks of the hot paths on the working tree and on a\nbaseline revision, interleaved, and fails on a slowdown beyond -threshold\nthat benchstat's Mann-Whitney U test finds significant at -alpha.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	paths, err := selectHotPaths(*only)
	if err != nil {
		return err
	}
	opts.paths = paths
	if opts.mode != "time" && opts.mode != "instructions" {
		return usageError{fmt.Sprintf("-mode %q: must be time or instructions", opts.mode)}
	}
	if opts.mode == "instructions" && opts.repeat < 2 {
		return usageError{"-repeat must be at least 2: the spread of the measurements is the noise"}
	}
	if opts.mode == "time" && opts.count < 6 {
		return usageError{"-count must be at least 6: benchstat needs 6 samples a side for a confidence interval"}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if opts.base == "" {
		opts.base, err = readBaseline(root)
		if err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "splicer-bench-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	baseDir := filepath.Join(work, "base")
	if err := os.Mkdir(baseDir, 0o755); err != nil {
		return err
	}
	commit, err := exportRevision(ctx, opts.base, baseDir)
	if err != nil {
		return err
	}
	base := &benchTree{label: "base", dir: baseDir}
	head := &benchTree{label: "head", dir: root}
	fmt.Fprintf(stdout, "baseline %s (%s) against the working tree; building the test binaries\n", opts.base, commit[:12])
	if load, busy := machineBusy(); busy && opts.mode == "time" {
		fmt.Fprintf(stdout, "warning: the machine is busy (load average %s on %d CPUs): expect wide spreads and an inconclusive result\n", load, runtime.NumCPU())
	}
	for _, t := range []*benchTree{base, head} {
		if err := t.build(ctx, work, opts.paths); err != nil {
			return err
		}
	}
	for _, h := range opts.paths {
		if _, ok := base.bins[h.pkg]; !ok {
			fmt.Fprintf(stdout, "%s: not in the baseline, measured without comparison\n", h.pkg)
		}
	}
	if opts.mode == "instructions" {
		return runInstructionCheck(ctx, base, head, opts, stdout)
	}
	if err := measure(ctx, base, head, opts.paths, opts, stdout); err != nil {
		return err
	}
	out := work
	if opts.keep != "" {
		out = opts.keep
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
	}
	rows, text, err := compare(ctx, base, head, opts, out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, text)
	if err := checkCoverage(rows, opts.paths); err != nil {
		return err
	}
	suspects := regressions(rows, opts)
	if len(suspects) > 0 && opts.confirm {
		fmt.Fprintf(stdout, "%d suspected regressions; measuring them again\n", len(suspects))
		var again []hotPath
		for _, h := range opts.paths {
			for _, r := range suspects {
				if benchInPath(h, r) {
					again = append(again, h)
					break
				}
			}
		}
		base.out.Reset()
		head.out.Reset()
		if err := measure(ctx, base, head, again, opts, stdout); err != nil {
			return err
		}
		rows2, text2, err := compare(ctx, base, head, opts, filepath.Join(work))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, text2)
		confirmed := map[string]bool{}
		for _, r := range regressions(rows2, opts) {
			confirmed[r.Name+" "+r.Unit] = true
		}
		var kept []benchRow
		for _, r := range suspects {
			if confirmed[r.Name+" "+r.Unit] {
				kept = append(kept, r)
			} else {
				fmt.Fprintf(stdout, "not repeated, so noise: %s %s %+.1f%%\n", r.Name, r.Unit, 100*r.Delta)
			}
		}
		suspects = kept
	}
	for _, r := range rows {
		if !r.HasBase && r.Unit == "sec/op" {
			fmt.Fprintf(stdout, "new, no baseline: %s\n", r.Name)
		}
	}
	var noisy []benchRow
	for _, r := range rows {
		if (r.Unit == "sec/op" || higherIsBetter(r.Unit)) && r.Inconclusive(opts.threshold, opts.alpha) {
			noisy = append(noisy, r)
		}
	}
	if len(suspects) > 0 {
		for _, r := range suspects {
			fmt.Fprintf(stdout, "REGRESSION %s: %s %.4g → %.4g (%+.1f%%, p=%.3g)\n", r.Name, r.Unit, r.Base, r.Head, 100*r.Delta, r.P)
		}
		return fmt.Errorf("%w: %d benchmarks slower than the baseline by more than %.0f%%", errFailed, len(suspects), 100*opts.threshold)
	}
	if len(noisy) > 0 {
		for _, r := range noisy {
			fmt.Fprintf(stdout, "INCONCLUSIVE %s: %s spread ±%.0f%% is wider than the %.0f%% to detect\n", r.Name, r.Unit, 100*r.Spread, 100*opts.threshold)
		}
		return fmt.Errorf("%w: %d benchmarks too noisy to tell a %.0f%% change: run on a quiet machine, or with a larger -count", errFailed, len(noisy), 100*opts.threshold)
	}
	fmt.Fprintf(stdout, "no regression beyond %.0f%% at p < %g against %s\n", 100*opts.threshold, opts.alpha, commit[:12])
	return nil
}

// machineBusy reports the load average, and whether it exceeds the number
// of CPUs: other work then competes with the benchmarks for every core.
func machineBusy() (string, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown", false
	}
	f := strings.Fields(string(b))
	load, err := strconv.ParseFloat(f[0], 64)
	return f[0], err == nil && load > float64(runtime.NumCPU())
}

// regressions returns the rows of rows that regressed.
func regressions(rows []benchRow, opts benchOptions) []benchRow {
	var out []benchRow
	for _, r := range rows {
		if r.Regressed(opts.threshold, opts.alpha) {
			out = append(out, r)
		}
	}
	return out
}

// checkCoverage fails when a hot path ran no benchmark in the working
// tree: its pattern no longer matches (a benchmark renamed or removed).
func checkCoverage(rows []benchRow, paths []hotPath) error {
	for _, h := range paths {
		found := false
		for _, r := range rows {
			if benchInPath(h, r) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("no benchmark of %s matched %q: update hotPaths in cmd/splicer-audit/benchcheck.go", h.pkg, h.bench)
		}
	}
	return nil
}

// benchInPath reports whether a row is one of h's benchmarks.
func benchInPath(h hotPath, r benchRow) bool {
	if r.Pkg != module+"/"+strings.TrimPrefix(h.pkg, "./") {
		return false
	}
	top, _, _ := strings.Cut(r.Name, "/")
	re, err := regexp.Compile(strings.Split(h.bench, "/")[0])
	return err == nil && re.MatchString("Benchmark"+top)
}

// baselineFile names the baseline revision of bench-check, relative to the
// module root.
const baselineFile = "cmd/splicer-audit/testdata/bench-baseline"

// readBaseline returns the revision baselineFile names: its first line
// that is neither blank nor a # comment.
func readBaseline(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, baselineFile))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	return "", fmt.Errorf("%s names no revision", baselineFile)
}

// selectHotPaths returns the hot paths whose package matches only (all of
// them for "").
func selectHotPaths(only string) ([]hotPath, error) {
	re, err := regexp.Compile(only)
	if err != nil {
		return nil, usageError{fmt.Sprintf("-only: %v", err)}
	}
	var out []hotPath
	for _, h := range hotPaths {
		if re.MatchString(h.pkg) {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, usageError{fmt.Sprintf("-only %q matches no hot path", only)}
	}
	return out, nil
}
