package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// The audit's steps, in the order they run and appear in the report.
var auditSteps = []string{"tests", "docs", "staticcheck", "govulncheck", "fuzz"}

// reportOptions are the settings of one audit.
type reportOptions struct {
	out         string
	steps       map[string]bool
	race, short bool
	timeout     time.Duration
	fuzztime    time.Duration
	staticcheck string
	govulncheck string
	vulndb      string
	vulndbDir   string
}

// audit is everything one `make audit` found.
type audit struct {
	Started  time.Time
	Commit   string
	Dirty    bool
	Load     string
	Steps    map[string]time.Duration
	Run      *testRun
	Coverage coverageResult
	Docs     []docCount
	Static   *staticcheckResult
	Vuln     *vulnResult
	Canary   []string // what the database's self-check found wrong
	Fuzz     []fuzzResult
	Errors   []string // steps that could not run
}

// runReport is `make audit`: every check, then the report.
func runReport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("report")
	opts := reportOptions{}
	only := fs.String("only", strings.Join(auditSteps, ","), "the `steps` to run, of "+strings.Join(auditSteps, ","))
	fs.StringVar(&opts.out, "out", filepath.Join("docs", "CODE_AUDIT_REPORT.md"), "write the report to `FILE` (\"-\": standard output); with -only a subset, the default is standard output")
	fs.BoolVar(&opts.race, "race", true, "run the tests under the race detector")
	fs.BoolVar(&opts.short, "short", false, "pass -short to the tests: skip the tests that start real servers")
	fs.DurationVar(&opts.timeout, "timeout", 14*time.Minute, "go test -timeout")
	fs.DurationVar(&opts.fuzztime, "fuzztime", 10*time.Second, "fuzz each target for `D`")
	fs.StringVar(&opts.staticcheck, "staticcheck", defaultStaticcheck, "staticcheck to go run, as `module/cmd@version`")
	fs.StringVar(&opts.govulncheck, "govulncheck", defaultGovulncheck, "govulncheck to go run, as `module/cmd@version`")
	fs.StringVar(&opts.vulndb, "vulndb", defaultVulnDB, "the golang.org/x/vulndb `module@version` to build the vulnerability database from")
	fs.StringVar(&opts.vulndbDir, "vulndb-dir", filepath.Join("bin", "vulndb"), "build the vulnerability database under `DIR`")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: splicer-audit report [flags]\n\nRuns the tests with coverage and the race detector, counts the documented\nexported names, runs staticcheck and govulncheck (against a database built\noffline from a pinned golang.org/x/vulndb), fuzzes every fuzz target, and\nwrites the report. Exits 1 when a check is below the bar.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts.steps = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !contains(auditSteps, s) {
			return usageError{fmt.Sprintf("-only: unknown step %q (steps: %s)", s, strings.Join(auditSteps, ","))}
		}
		opts.steps[s] = true
	}
	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if len(opts.steps) < len(auditSteps) && !outSet {
		opts.out = "-"
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	a := runAudit(ctx, root, opts, os.Stderr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var md bytes.Buffer
	writeReport(&md, a, opts)
	if opts.out == "-" {
		_, err = stdout.Write(md.Bytes())
	} else {
		err = os.WriteFile(opts.out, md.Bytes(), 0o644)
		fmt.Fprintf(stdout, "wrote %s\n", opts.out)
	}
	if err != nil {
		return err
	}
	for _, v := range a.verdicts(opts) {
		if !v.ok {
			fmt.Fprintf(stdout, "below the bar: %s: %s\n", v.check, v.result)
		}
	}
	if !a.ok(opts) {
		return fmt.Errorf("%w: see the report", errFailed)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runAudit runs the steps of opts, logging progress to log.
func runAudit(ctx context.Context, root string, opts reportOptions, log io.Writer) *audit {
	a := &audit{Started: time.Now().UTC(), Steps: map[string]time.Duration{}}
	a.Commit, a.Dirty = gitCommit(ctx)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		a.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	step := func(name string, f func() error) {
		if !opts.steps[name] || ctx.Err() != nil {
			return
		}
		fmt.Fprintf(log, "== %s\n", name)
		start := time.Now()
		if err := f(); err != nil {
			a.Errors = append(a.Errors, fmt.Sprintf("%s: %v", name, err))
			fmt.Fprintf(log, "%s could not run: %v\n", name, err)
		}
		a.Steps[name] = time.Since(start)
	}
	step("tests", func() error {
		profile := filepath.Join(os.TempDir(), fmt.Sprintf("splicer-audit-%d.cover", os.Getpid()))
		defer os.Remove(profile)
		var err error
		a.Run, a.Coverage, err = measureCoverage(ctx, root, coverageOptions{race: opts.race, short: opts.short,
			profile: profile, timeout: opts.timeout, patterns: []string{"./..."}}, log)
		return err
	})
	step("docs", func() error {
		names, err := exportedNames(root)
		a.Docs = countDocs(names)
		return err
	})
	step("staticcheck", func() error {
		res, err := runStaticcheck(ctx, opts.staticcheck)
		a.Static = &res
		return err
	})
	step("govulncheck", func() error {
		db, err := ensureVulnDB(ctx, opts.vulndb, opts.vulndbDir)
		if err != nil {
			return err
		}
		a.Canary = checkVulnDB(ctx, opts.govulncheck, db)
		res, err := runGovulncheck(ctx, opts.govulncheck, root, db, "./...")
		a.Vuln = &res
		return err
	})
	step("fuzz", func() error {
		targets, err := findFuzzTargets(root)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r := runFuzz(ctx, t, opts.fuzztime)
			fmt.Fprintf(log, "fuzz %s: %d execs in %v %s\n", t, r.Execs, r.Ran, r.Failure)
			a.Fuzz = append(a.Fuzz, r)
		}
		return nil
	})
	return a
}

// gitCommit returns the commit checked out and whether the tree differs
// from it.
func gitCommit(ctx context.Context) (string, bool) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	status, _ := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(bytes.TrimSpace(status)) > 0
}

// checkVulnDB asks govulncheck's query mode, against db, about versions
// whose vulnerabilities are known, so that a database that finds nothing
// cannot pass for a clean scan: golang.org/x/text v0.3.7 has GO-2022-1059,
// fixed in v0.3.8. It returns what did not hold.
func checkVulnDB(ctx context.Context, tool string, db vulnDB) []string {
	var wrong []string
	for _, c := range []struct {
		query string
		id    string
		want  bool
	}{
		{"golang.org/x/text@v0.3.7", "GO-2022-1059", true},
		{"golang.org/x/text@v0.3.8", "GO-2022-1059", false},
		{"stdlib@go1.20.0", "GO-2023-1571", true},
	} {
		out, stderr, err := goRun(ctx, tool, "-mode", "query", "-format", "json", "-db", "file://"+db.Dir, c.query)
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("query %s: %v: %s", c.query, err, strings.TrimSpace(string(stderr))))
			continue
		}
		found := bytes.Contains(out, []byte(`"id": "`+c.id+`"`))
		if found != c.want {
			wrong = append(wrong, fmt.Sprintf("query %s: %s reported %v, want %v", c.query, c.id, found, c.want))
		}
	}
	return wrong
}

// verdict is one row of the summary: the step that measured it, what was
// checked against which bar, and the result.
type verdict struct {
	step, check, bar, result string
	ok                       bool
	notRun                   bool // the check was left out of this audit: neither met nor below
}

// verdicts returns the summary rows of the steps that ran.
func (a *audit) verdicts(opts reportOptions) []verdict {
	var out []verdict
	if opts.steps["tests"] && a.Run != nil {
		name, bar := "tests", "every test passes"
		if opts.race {
			name, bar = "tests under the race detector", "every test passes, no data race"
		}
		out = append(out, verdict{"tests", name, bar,
			fmt.Sprintf("%d passed, %d failed, %d data races, %d skipped", a.Run.Passed, len(a.Run.Failed), len(a.Run.Races), len(a.Run.Skipped)),
			a.Run.OK(), false})
		if !opts.race {
			out = append(out, verdict{step: "tests", check: "data races", bar: "none under the race detector",
				result: "not measured: these tests ran without -race (`make test` runs every test under it)", ok: true, notRun: true})
		}
		cov, tot := a.Coverage.Product()
		below := a.Coverage.BelowFloor()
		res := fmt.Sprintf("%.1f%% of %d statements; %d packages below %.0f%%", percent(cov, tot), tot, len(below), coverageFloor)
		out = append(out, verdict{"", "statement coverage of the product", fmt.Sprintf("≥ %.0f%% overall, ≥ %.0f%% per package", coverageGoal, coverageFloor), res, a.Coverage.MeetsBar(), false})
	}
	if opts.steps["docs"] {
		total, missing := 0, 0
		for _, c := range a.Docs {
			total += c.names
			missing += len(c.undocumented)
		}
		out = append(out, verdict{"docs", "documented exported names", "100%",
			fmt.Sprintf("%d of %d (%.1f%%)", total-missing, total, percent(total-missing, total)), missing == 0, false})
	}
	if opts.steps["staticcheck"] && a.Static != nil {
		out = append(out, verdict{"staticcheck", "staticcheck " + toolVersion(a.Static.Tool), "no finding",
			fmt.Sprintf("%d findings", len(a.Static.Findings)), len(a.Static.Findings) == 0, false})
	}
	if opts.steps["govulncheck"] && a.Vuln != nil {
		called := a.Vuln.Called()
		res := fmt.Sprintf("%d vulnerabilities called, %d more in code or modules not called", len(called), len(a.Vuln.Findings)-len(called))
		if len(a.Canary) > 0 {
			res += "; the database failed its self-check"
		}
		out = append(out, verdict{"govulncheck", "govulncheck " + toolVersion(a.Vuln.Tool), "no vulnerability the code calls",
			res, len(called) == 0 && len(a.Canary) == 0, false})
	}
	if opts.steps["fuzz"] {
		crashes := 0
		for _, f := range a.Fuzz {
			if f.Failure != "" {
				crashes++
			}
		}
		out = append(out, verdict{"fuzz", "fuzzing", "no failing input",
			fmt.Sprintf("%d targets, %v each, %d failed", len(a.Fuzz), opts.fuzztime, crashes), crashes == 0, false})
	}
	return out
}

// ok reports whether every step ran and met the bar.
func (a *audit) ok(opts reportOptions) bool {
	if len(a.Errors) > 0 {
		return false
	}
	for _, v := range a.verdicts(opts) {
		if !v.ok {
			return false
		}
	}
	return true
}

// toolVersion returns the version of a module/cmd@version tool.
func toolVersion(tool string) string {
	if _, v, ok := strings.Cut(tool, "@"); ok {
		return v
	}
	return tool
}

// writeReport writes the audit as markdown.
func writeReport(w io.Writer, a *audit, opts reportOptions) {
	fmt.Fprintln(w, "# Code audit report")
	fmt.Fprintln(w)
	dirty := ""
	if a.Dirty {
		dirty = " plus uncommitted changes"
	}
	fmt.Fprintf(w, "Generated by `make audit` (cmd/splicer-audit) on %s at commit %s%s, with %s %s/%s on %d CPUs (load average %s at the start). Do not edit: `make audit` writes it; the text of its sections is in cmd/splicer-audit.\n\n",
		a.Started.Format("2006-01-02 15:04 UTC"), a.Commit, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), a.Load)

	fmt.Fprintln(w, "## Summary")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| check | bar | result | verdict | took |")
	fmt.Fprintln(w, "|---|---|---|---|---:|")
	for _, v := range a.verdicts(opts) {
		took := "(with the tests)"
		if v.step != "" {
			took = a.Steps[v.step].Round(time.Second).String()
		}
		verdict := "met"
		switch {
		case v.notRun:
			verdict = "not run"
		case !v.ok:
			verdict = "**below**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", v.check, v.bar, v.result, verdict, took)
	}
	fmt.Fprintln(w)
	for _, e := range a.Errors {
		fmt.Fprintf(w, "- **could not run** %s\n", e)
	}

	fmt.Fprintln(w, "## Still below the bar, and why")
	fmt.Fprintln(w)
	writeBelow(w, a, opts)

	if opts.steps["tests"] && a.Run != nil {
		writeTests(w, a, opts)
		writeCoverage(w, a)
	}
	if opts.steps["docs"] {
		writeDocs(w, a)
	}
	if opts.steps["staticcheck"] && a.Static != nil {
		writeStaticcheck(w, a)
	}
	if opts.steps["govulncheck"] && a.Vuln != nil {
		writeVuln(w, a)
	}
	if opts.steps["fuzz"] {
		writeFuzz(w, a, opts)
	}
}

// writeBelow lists what is below the bar, each with the reason recorded in
// notes.go where there is one.
func writeBelow(w io.Writer, a *audit, opts reportOptions) {
	n := 0
	item := func(format string, args ...any) {
		fmt.Fprintf(w, "- "+format+"\n", args...)
		n++
	}
	if a.Run != nil {
		for _, f := range a.Run.Failed {
			item("test %s failed: %s", testName(f), f.Why)
		}
		for _, r := range a.Run.Races {
			item("data race in %s", testName(r))
		}
		cov, tot := a.Coverage.Product()
		if p := percent(cov, tot); p < coverageGoal {
			item("statement coverage of the product is %.1f%%, under the %.0f%% goal: %d more statements to cover. %s", p, coverageGoal,
				int(float64(tot)*coverageGoal/100+0.999)-cov, notes["coverage"])
		}
		for _, p := range a.Coverage.BelowFloor() {
			why := coverageNotes[p.Rel]
			if why == "" {
				why = "no reason recorded in cmd/splicer-audit/notes.go."
			}
			item("package %s is at %.1f%%, under the %.0f%% floor: %s", p.Rel, p.Percent(), coverageFloor, why)
		}
	}
	for _, c := range a.Docs {
		for _, u := range c.undocumented {
			item("%s:%d: exported %s has no doc comment", u.file, u.line, u.name)
		}
	}
	if a.Static != nil {
		for _, f := range a.Static.Findings {
			item("staticcheck %s at %s: %s", f.Check, f.Pos, f.Msg)
		}
	}
	if a.Vuln != nil {
		if called := a.Vuln.Called(); len(called) > 0 {
			item("govulncheck: the code calls %d known vulnerabilities. %s %s", len(called), vulnAdvice(a.Vuln), notes["govulncheck"])
		}
		for _, c := range a.Canary {
			item("the vulnerability database failed its self-check: %s", c)
		}
	}
	for _, f := range a.Fuzz {
		if f.Failure != "" {
			item("fuzz target %s failed: %s (input: %s)", f.fuzzTarget, f.Failure, f.Input)
		}
	}
	for _, e := range a.Errors {
		item("%s could not run", e)
	}
	if n == 0 {
		fmt.Fprintln(w, "Nothing: every check that ran met the bar.")
	}
	fmt.Fprintln(w)
}

// vulnAdvice says what fixes the vulnerabilities the code calls: for the
// standard library, the Go release that fixes all of them.
func vulnAdvice(v *vulnResult) string {
	var std []string
	fixed := ""
	var mods []string
	for _, f := range v.Called() {
		if f.Module == "stdlib" || f.Module == "toolchain" {
			std = append(std, f.ID)
			if semverLess(fixed, f.Fixed) {
				fixed = f.Fixed
			}
		} else {
			mods = append(mods, fmt.Sprintf("%s %s (fixed in %s)", f.Module, f.Found, f.Fixed))
		}
	}
	var out []string
	if len(std) > 0 {
		s := fmt.Sprintf("%d are in the standard library of %s, the Go that built and ran the check", len(std), v.GoVersion)
		if fixed != "" {
			s += fmt.Sprintf(": building with Go %s or later fixes all of them (%s is the toolchain to require)", strings.TrimPrefix(fixed, "v"), "go"+strings.TrimPrefix(fixed, "v"))
		}
		out = append(out, s+".")
	}
	if len(mods) > 0 {
		out = append(out, "Upgrade "+strings.Join(mods, ", ")+".")
	}
	return strings.Join(out, " ")
}

// semverLess compares two versions of the form vMAJOR.MINOR.PATCH (a
// missing part is 0); "" is less than any version.
func semverLess(a, b string) bool {
	if a == "" {
		return b != ""
	}
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func versionParts(v string) [3]int {
	var out [3]int
	v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	v, _, _ = strings.Cut(v, "-")
	for i, p := range strings.SplitN(v, ".", 3) {
		fmt.Sscanf(p, "%d", &out[i])
	}
	return out
}

func testName(r testResult) string {
	if r.Test == "" {
		return r.Package
	}
	return r.Package + " " + r.Test
}

func writeTests(w io.Writer, a *audit, opts reportOptions) {
	fmt.Fprintln(w, "## Tests and the race detector")
	fmt.Fprintln(w)
	flags := "-covermode=atomic -coverpkg=PRODUCT"
	if opts.race {
		flags = "-race " + flags
	}
	if opts.short {
		flags += " -short"
	}
	fmt.Fprintf(w, "`go test %s ./...` ran every test of the module in %v: %d tests and subtests passed, %d failed, %d reported a data race, %d skipped.\n\n",
		flags, a.Steps["tests"].Round(time.Second), a.Run.Passed, len(a.Run.Failed), len(a.Run.Races), len(a.Run.Skipped))
	if len(a.Run.Failed) > 0 {
		fmt.Fprintln(w, "Failed:")
		fmt.Fprintln(w)
		for _, f := range a.Run.Failed {
			fmt.Fprintf(w, "- %s: %s\n", testName(f), f.Why)
		}
		fmt.Fprintln(w)
	}
	if len(a.Run.Skipped) > 0 {
		// Group the skips by reason: most are one missing tool each.
		byWhy := map[string][]string{}
		for _, s := range a.Run.Skipped {
			byWhy[s.Why] = append(byWhy[s.Why], testName(s))
		}
		whys := make([]string, 0, len(byWhy))
		for why := range byWhy {
			whys = append(whys, why)
		}
		sort.Strings(whys)
		fmt.Fprintln(w, "Skipped, by reason:")
		fmt.Fprintln(w)
		for _, why := range whys {
			tests := byWhy[why]
			list := strings.Join(tests, ", ")
			if len(tests) > 4 {
				list = strings.Join(tests[:4], ", ") + fmt.Sprintf(" and %d more", len(tests)-4)
			}
			fmt.Fprintf(w, "- %s (%d): %s\n", why, len(tests), list)
		}
		fmt.Fprintln(w)
	}
	var slow []packageResult
	slow = append(slow, a.Run.Packages...)
	sort.Slice(slow, func(i, j int) bool { return slow[i].Elapsed > slow[j].Elapsed })
	if len(slow) > 5 {
		slow = slow[:5]
	}
	var parts []string
	for _, p := range slow {
		parts = append(parts, fmt.Sprintf("%s %v", strings.TrimPrefix(p.Package, module+"/"), p.Elapsed.Round(time.Second)))
	}
	fmt.Fprintf(w, "Slowest packages: %s.\n\n", strings.Join(parts, ", "))
}

func writeCoverage(w io.Writer, a *audit) {
	fmt.Fprintln(w, "## Statement coverage")
	fmt.Fprintln(w)
	fmt.Fprintln(w, notes["coverage-method"])
	fmt.Fprintln(w)
	writeCoverageTable(w, a.Coverage, 3)
	fmt.Fprintln(w, "Not product code, so not counted:")
	fmt.Fprintln(w)
	var excl []string
	for k := range nonProduct {
		excl = append(excl, k)
	}
	sort.Strings(excl)
	for _, k := range excl {
		fmt.Fprintf(w, "- %s: %s\n", k, nonProduct[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### What remains uncovered, and why")
	fmt.Fprintln(w)
	for _, p := range a.Coverage.Packages {
		if p.Excluded != "" || p.Stmts == 0 || p.Covered == p.Stmts {
			continue
		}
		fmt.Fprintf(w, "**%s** (%d statements uncovered", p.Rel, p.Stmts-p.Covered)
		var uncalled []string
		for _, f := range p.Funcs {
			if f.Uncalled {
				uncalled = append(uncalled, "`"+f.Name+"`")
			}
		}
		if len(uncalled) > 0 {
			fmt.Fprintf(w, "; never run: %s", strings.Join(uncalled, ", "))
		}
		fmt.Fprintln(w, ").")
		if why := coverageNotes[p.Rel]; why != "" {
			fmt.Fprintln(w, why)
		}
		fmt.Fprintln(w)
	}
}

func writeDocs(w io.Writer, a *audit) {
	fmt.Fprintln(w, "## Documented exported names")
	fmt.Fprintln(w)
	total, missing := 0, 0
	for _, c := range a.Docs {
		total += c.names
		missing += len(c.undocumented)
	}
	fmt.Fprintf(w, "%d of %d exported names of the module's packages (package main aside) have a doc comment. `TestExportedNamesDocumented` in cmd/splicer-audit counts them under `make test` and fails naming each one without; what counts is in `exportedNames` (docnames.go).\n\n", total-missing, total)
	fmt.Fprintln(w, "| package | exported names | undocumented |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, c := range a.Docs {
		fmt.Fprintf(w, "| %s | %d | %d |\n", c.pkg, c.names, len(c.undocumented))
	}
	fmt.Fprintln(w)
}

func writeStaticcheck(w io.Writer, a *audit) {
	fmt.Fprintln(w, "## staticcheck")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "`go run %s ./...` (its default checks, tests included) took %v and reported %d findings.\n\n",
		a.Static.Tool, a.Steps["staticcheck"].Round(time.Second), len(a.Static.Findings))
	for _, f := range a.Static.Findings {
		fmt.Fprintf(w, "- %s %s: %s\n", f.Check, f.Pos, f.Msg)
	}
	if len(a.Static.Findings) > 0 {
		fmt.Fprintln(w)
	}
}

func writeVuln(w io.Writer, a *audit) {
	v := a.Vuln
	fmt.Fprintln(w, "## govulncheck")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "`go run %s -db file://DB ./...` with %s. DB is the Go vulnerability database built offline by `splicer-audit vulndb` from %s (%d entries over %d modules, last modified %s): the module's data/osv entries, byte for byte, under the v1 layout govulncheck reads (index/db.json, index/modules.json, index/vulns.json, ID/GO-YYYY-NNNN.json). Nothing is fetched but that module, from the Go module proxy.\n\n",
		v.Tool, v.GoVersion, v.DB.Source, v.DB.Entries, v.DB.Modules, v.DB.Modified.Format("2006-01-02"))
	if len(a.Canary) == 0 {
		fmt.Fprintln(w, "Self-check of the database, with govulncheck's query mode: golang.org/x/text v0.3.7 reports GO-2022-1059 and v0.3.8 does not; the standard library of go1.20.0 reports GO-2023-1571.")
	} else {
		fmt.Fprintf(w, "**The database failed its self-check**: %s.\n", strings.Join(a.Canary, "; "))
	}
	fmt.Fprintln(w)
	if len(v.Findings) == 0 {
		fmt.Fprintln(w, "No known vulnerability in the code, the modules it imports or the standard library.")
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintln(w, "| id | what | level | module | found | fixed in |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, f := range v.Findings {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", f.ID, strings.ReplaceAll(f.Summary, "|", "\\|"), f.Level, f.Module, f.Found, f.Fixed)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\"called\": the code reaches a vulnerable function; \"imported\": it imports the vulnerable package without reaching the function; \"required\": only the module is required. The bar is no \"called\" finding.")
	fmt.Fprintln(w)
	if called := v.Called(); len(called) > 0 {
		fmt.Fprintln(w, vulnAdvice(v), notes["govulncheck"])
		fmt.Fprintln(w)
		fmt.Fprintln(w, "One path from the code to each:")
		fmt.Fprintln(w)
		for _, f := range called {
			fmt.Fprintf(w, "- %s: %s\n", f.ID, f.Trace)
		}
		fmt.Fprintln(w)
	}
}

func writeFuzz(w io.Writer, a *audit, opts reportOptions) {
	fmt.Fprintln(w, "## Fuzzing")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Each fuzz target of the module (every `func FuzzXxx(f *testing.F)` in a _test.go file) ran for %v with `go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime %v`, on %d CPUs shared with the rest of the machine; `make test` runs their seed corpora, `make fuzz FUZZTIME=10m` fuzzes longer.\n\n",
		opts.fuzztime, opts.fuzztime, runtime.NumCPU())
	fmt.Fprintln(w, "| target | fuzzed for | inputs tried | new interesting | corpus | result |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
	for _, f := range a.Fuzz {
		result := "passed"
		if f.Failure != "" {
			result = "**failed**: " + strings.ReplaceAll(f.Failure, "|", "\\|")
		}
		fmt.Fprintf(w, "| %s | %v | %d | %d | %d | %s |\n", f.fuzzTarget, f.Ran, f.Execs, f.Interesting, f.Corpus, result)
	}
	fmt.Fprintln(w)
}
