package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The coverage bar the project set itself: statements of the product's
// packages run by the test suite, over all of them and per package.
const (
	coverageGoal  = 95.0
	coverageFloor = 85.0
)

// nonProduct are the packages of the module that are not part of the
// product, so its coverage goal does not count them, with the reason.
// An entry covers the packages below it too.
var nonProduct = map[string]string{
	"cmd/splicer-audit":         "this tool: make audit, test-coverage and bench-check",
	"cmd/splicer-bench":         "the side-by-side benchmark harness, run by hand (make bench)",
	"cmd/splicer-scalesim":      "the ECMP scale simulator, run by hand as root (make scale-sim)",
	"pkg/imports":               "a test and nothing else",
	"pkg/testutil":              "test support, imported by tests only",
	"l4/internal/sock/socktest": "test support, imported by tests only",
}

// module is the module path every package path starts with.
const module = "github.com/splicerlb/splicer"

// goPackage is what `go list` says of one package of the module.
type goPackage struct {
	ImportPath string
	Dir        string
	Name       string
	GoFiles    []string
}

// Rel is the package's path inside the module ("." for the root).
func (p goPackage) Rel() string {
	if p.ImportPath == module {
		return "."
	}
	return strings.TrimPrefix(p.ImportPath, module+"/")
}

// excludedWhy returns why a package is not product code, or "".
func excludedWhy(rel string) string {
	for prefix, why := range nonProduct {
		if rel == prefix || strings.HasPrefix(rel, prefix+"/") {
			return why
		}
	}
	return ""
}

// listPackages returns the module's packages matching patterns.
func listPackages(ctx context.Context, patterns ...string) ([]goPackage, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-json"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// block is one basic block of a coverage profile.
type block struct {
	startLine, endLine int
	stmts              int
	covered            bool
}

// readProfile reads a coverage profile (go test -coverprofile) into the
// blocks of each file, keyed by the file's import path ("module/pkg/f.go").
// A block listed several times (a package instrumented in several test
// binaries, with -coverpkg) is covered when any of them ran it.
func readProfile(r io.Reader) (map[string][]block, error) {
	type pos struct {
		file string
		span string
	}
	seen := map[pos]int{}
	out := map[string][]block{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			if !strings.HasPrefix(line, "mode: ") {
				return nil, fmt.Errorf("profile line 1: %q is not a mode line", line)
			}
			continue
		}
		if line == "" {
			continue
		}
		// file.go:12.5,14.2 3 1
		colon := strings.LastIndex(line, ":")
		fields := strings.Fields(line[colon+1:])
		if colon < 0 || len(fields) != 3 {
			return nil, fmt.Errorf("profile line %d: malformed %q", n, line)
		}
		file, span := line[:colon], fields[0]
		stmts, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.ParseInt(fields[2], 10, 64)
		start, end, ok := strings.Cut(span, ",")
		sl, err3 := strconv.Atoi(strings.SplitN(start, ".", 2)[0])
		el, err4 := strconv.Atoi(strings.SplitN(end, ".", 2)[0])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !ok {
			return nil, fmt.Errorf("profile line %d: malformed %q", n, line)
		}
		k := pos{file, span}
		if i, dup := seen[k]; dup {
			out[file][i].covered = out[file][i].covered || count > 0
			continue
		}
		seen[k] = len(out[file])
		out[file] = append(out[file], block{startLine: sl, endLine: el, stmts: stmts, covered: count > 0})
	}
	return out, sc.Err()
}

// funcCoverage is the coverage of one function (or of the package-level
// code of a file, under the name "(package level)").
type funcCoverage struct {
	Name     string // "Func" or "Type.Method"
	File     string // relative to the module root
	Line     int
	Stmts    int
	Covered  int
	Uncalled bool // no statement of it ran
}

// pkgCoverage is the coverage of one package.
type pkgCoverage struct {
	Rel      string // path inside the module
	Excluded string // why it is not product code, or ""
	Stmts    int
	Covered  int
	Funcs    []funcCoverage // functions with statements left uncovered, most uncovered first
}

// Percent is the share of statements covered, 100 for a package without
// statements.
func (p pkgCoverage) Percent() float64 { return percent(p.Covered, p.Stmts) }

func percent(covered, total int) float64 {
	if total == 0 {
		return 100
	}
	return 100 * float64(covered) / float64(total)
}

// coverageResult is the coverage of every package of the module.
type coverageResult struct {
	Packages []pkgCoverage
}

// Product sums the statements of the product's packages.
func (c coverageResult) Product() (covered, total int) {
	for _, p := range c.Packages {
		if p.Excluded == "" {
			covered += p.Covered
			total += p.Stmts
		}
	}
	return covered, total
}

// BelowFloor returns the product packages under the per-package floor.
func (c coverageResult) BelowFloor() []pkgCoverage {
	var out []pkgCoverage
	for _, p := range c.Packages {
		if p.Excluded == "" && p.Stmts > 0 && p.Percent() < coverageFloor {
			out = append(out, p)
		}
	}
	return out
}

// MeetsBar reports whether the product meets the goal and every product
// package the floor.
func (c coverageResult) MeetsBar() bool {
	cov, tot := c.Product()
	return percent(cov, tot) >= coverageGoal && len(c.BelowFloor()) == 0
}

// summarize attributes the profile's blocks to the packages and functions
// of pkgs. Files of the profile outside pkgs are ignored; packages without
// blocks (no statements, or not instrumented) report zero statements.
func summarize(pkgs []goPackage, blocks map[string][]block, root string) (coverageResult, error) {
	var res coverageResult
	for _, p := range pkgs {
		pc := pkgCoverage{Rel: p.Rel(), Excluded: excludedWhy(p.Rel())}
		funcs := map[string]*funcCoverage{}
		var order []string
		for _, f := range p.GoFiles {
			bs := blocks[path.Join(p.ImportPath, f)]
			if len(bs) == 0 {
				continue
			}
			file := filepath.Join(p.Dir, f)
			decls, err := funcSpans(file)
			if err != nil {
				return res, err
			}
			rel, _ := filepath.Rel(root, file)
			for _, b := range bs {
				name, line := "(package level)", 0
				for _, d := range decls {
					if b.startLine >= d.start && b.startLine <= d.end {
						name, line = d.name, d.start
						break
					}
				}
				k := rel + ":" + name
				fc := funcs[k]
				if fc == nil {
					fc = &funcCoverage{Name: name, File: filepath.ToSlash(rel), Line: line}
					funcs[k] = fc
					order = append(order, k)
				}
				fc.Stmts += b.stmts
				pc.Stmts += b.stmts
				if b.covered {
					fc.Covered += b.stmts
					pc.Covered += b.stmts
				}
			}
		}
		for _, k := range order {
			if fc := funcs[k]; fc.Covered < fc.Stmts {
				fc.Uncalled = fc.Covered == 0
				pc.Funcs = append(pc.Funcs, *fc)
			}
		}
		sort.SliceStable(pc.Funcs, func(i, j int) bool {
			return pc.Funcs[i].Stmts-pc.Funcs[i].Covered > pc.Funcs[j].Stmts-pc.Funcs[j].Covered
		})
		res.Packages = append(res.Packages, pc)
	}
	sort.Slice(res.Packages, func(i, j int) bool { return res.Packages[i].Rel < res.Packages[j].Rel })
	return res, nil
}

// funcSpan is the line range of one function declaration.
type funcSpan struct {
	name       string
	start, end int
}

// funcSpans returns the functions a Go file declares, with their lines.
func funcSpans(file string) ([]funcSpan, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []funcSpan
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		name := fd.Name.Name
		if r := receiverType(fd.Recv); r != "" {
			name = r + "." + name
		}
		out = append(out, funcSpan{name, fset.Position(fd.Pos()).Line, fset.Position(fd.End()).Line})
	}
	return out, nil
}

// coverageOptions are the settings of one coverage run.
type coverageOptions struct {
	race, short bool
	profile     string
	timeout     time.Duration
	patterns    []string
}

// measureCoverage runs the tests of the packages matching opts.patterns
// once, each test binary instrumenting every product package (-coverpkg),
// so a statement counts as covered when any test of the module runs it,
// and summarizes the profile it writes.
func measureCoverage(ctx context.Context, root string, opts coverageOptions, progress io.Writer) (*testRun, coverageResult, error) {
	all, err := listPackages(ctx, "./...")
	if err != nil {
		return nil, coverageResult{}, err
	}
	var product []string
	for _, p := range all {
		if excludedWhy(p.Rel()) == "" {
			product = append(product, p.ImportPath)
		}
	}
	args := []string{"-covermode=atomic", "-coverpkg=" + strings.Join(product, ","), "-coverprofile=" + opts.profile,
		"-timeout=" + opts.timeout.String()}
	if opts.race {
		args = append(args, "-race")
	}
	if opts.short {
		args = append(args, "-short")
	}
	run, err := goTest(ctx, append(args, opts.patterns...), progress)
	if err != nil {
		return run, coverageResult{}, err
	}
	f, err := os.Open(opts.profile)
	if err != nil {
		return run, coverageResult{}, fmt.Errorf("the tests wrote no coverage profile: %w", err)
	}
	defer f.Close()
	blocks, err := readProfile(f)
	if err != nil {
		return run, coverageResult{}, fmt.Errorf("%s: %w", opts.profile, err)
	}
	res, err := summarize(all, blocks, root)
	return run, res, err
}

// runCoverage is `make test-coverage`: the tests with statement coverage,
// then the table per package.
func runCoverage(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("coverage")
	opts := coverageOptions{}
	fs.BoolVar(&opts.race, "race", false, "run the tests under the race detector")
	fs.BoolVar(&opts.short, "short", false, "pass -short: skip the tests that start real servers")
	fs.StringVar(&opts.profile, "profile", "coverage.out", "write the merged coverage profile to `FILE` (go tool cover -html=FILE shows it)")
	fs.DurationVar(&opts.timeout, "timeout", 14*time.Minute, "go test -timeout")
	out := fs.String("out", "", "also write the table, in markdown, to `FILE`")
	check := fs.Bool("check", false, "exit 1 when the product is below the goal or a package below the floor")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: splicer-audit coverage [flags] [packages]\n\nRuns the tests of packages (default ./...) with every product package\ninstrumented, and prints the statement coverage per package, against the\ngoal of %.0f%% over the product and %.0f%% for each product package.\n\n", coverageGoal, coverageFloor)
		fs.PrintDefaults()
	}
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	opts.patterns = fs.Args()
	if len(opts.patterns) == 0 {
		opts.patterns = []string{"./..."}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	run, res, err := measureCoverage(ctx, root, opts, stdout)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeCoverageTable(&md, res, 3)
	fmt.Fprintln(stdout)
	stdout.Write(md.Bytes())
	if *out != "" {
		if err := os.WriteFile(*out, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	for _, f := range run.Failed {
		fmt.Fprintf(stdout, "FAIL %s %s: %s\n", f.Package, f.Test, f.Why)
	}
	switch {
	case !run.OK():
		return fmt.Errorf("%w: %d tests failed", errFailed, len(run.Failed))
	case *check && !res.MeetsBar():
		return fmt.Errorf("%w: coverage below the bar", errFailed)
	}
	return nil
}

// writeCoverageTable writes the per-package table in markdown, naming for
// each product package below 100% its topN most uncovered functions.
func writeCoverageTable(w io.Writer, res coverageResult, topN int) {
	cov, tot := res.Product()
	fmt.Fprintf(w, "Product: **%.1f%%** of %d statements (goal %.0f%%; every package at least %.0f%%).\n\n", percent(cov, tot), tot, coverageGoal, coverageFloor)
	fmt.Fprintln(w, "| package | statements | covered | coverage | bar | most uncovered functions (statements left) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
	for _, p := range res.Packages {
		if p.Excluded != "" {
			continue
		}
		if p.Stmts == 0 {
			fmt.Fprintf(w, "| %s | - | - | - | not measured | |\n", p.Rel)
			continue
		}
		bar := "met"
		if p.Stmts > 0 && p.Percent() < coverageFloor {
			bar = fmt.Sprintf("**below %.0f%%**", coverageFloor)
		}
		var worst []string
		for i, f := range p.Funcs {
			if i == topN {
				worst = append(worst, "…")
				break
			}
			worst = append(worst, fmt.Sprintf("`%s` (%d)", f.Name, f.Stmts-f.Covered))
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.1f%% | %s | %s |\n", p.Rel, p.Stmts, p.Covered, p.Percent(), bar, strings.Join(worst, ", "))
	}
	fmt.Fprintln(w)
}
