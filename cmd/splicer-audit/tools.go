package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The tools, pinned. The Makefile passes the same values; the defaults let
// the subcommands run by hand.
const (
	defaultStaticcheck = "honnef.co/go/tools/cmd/staticcheck@v0.8.2"
	defaultGovulncheck = "golang.org/x/vuln/cmd/govulncheck@v1.9.0"
	defaultBenchstat   = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"
)

// goRun runs `go run tool args...` in the module root and returns its
// standard output and error. go run at a version builds the tool in the
// module cache, outside this module: go.mod and go.sum stay as they are.
// A tool that exits non-zero returns its output with an *exec.ExitError.
func goRun(ctx context.Context, tool string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", tool}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// exitCode returns the exit status in err, or -1 when the command did
// not run to an exit.
func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// finding is one problem a static checker reported.
type finding struct {
	Pos   string // file:line:column
	Check string // the checker's code, as SA4006
	Msg   string
}

// staticcheckLine matches staticcheck's text output:
// "pkg/x/f.go:12:3: message (SA4006)".
var staticcheckLine = regexp.MustCompile(`^(\S+:\d+:\d+): (.*) \(([A-Z]+[0-9]+)\)$`)

// staticcheckResult is what one staticcheck run found.
type staticcheckResult struct {
	Tool     string
	Findings []finding
	Elapsed  time.Duration
}

// runStaticcheck runs staticcheck on every package of the module, tests
// included, with its default checks.
func runStaticcheck(ctx context.Context, tool string) (staticcheckResult, error) {
	start := time.Now()
	out, stderr, err := goRun(ctx, tool, "./...")
	res := staticcheckResult{Tool: tool, Elapsed: time.Since(start)}
	var other []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if m := staticcheckLine.FindStringSubmatch(line); m != nil {
			res.Findings = append(res.Findings, finding{Pos: m[1], Msg: m[2], Check: m[3]})
		} else {
			other = append(other, line)
		}
	}
	// staticcheck exits 1 when it reports findings; anything else, or
	// output it did not print as findings, means it could not check.
	if code := exitCode(err); code != 0 && !(code == 1 && len(res.Findings) > 0 && len(other) == 0) {
		return res, fmt.Errorf("%s: %v: %s", tool, err, strings.TrimSpace(string(stderr)+"\n"+strings.Join(other, "\n")))
	}
	return res, nil
}

// vulnFinding is one vulnerability govulncheck found, at the deepest level
// it reached: "called" (the code calls a vulnerable symbol), "imported" (a
// vulnerable package is imported, no vulnerable symbol called) or
// "required" (a vulnerable module is required, its vulnerable packages
// not imported).
type vulnFinding struct {
	ID      string
	Summary string
	Level   string
	Module  string // module path, "stdlib" for the standard library
	Found   string // the version in use
	Fixed   string // the first version without it, or ""
	Trace   string // the first call path that reaches it, for "called"
}

// vulnResult is what one govulncheck run found.
type vulnResult struct {
	Tool      string
	DB        vulnDB
	GoVersion string
	Findings  []vulnFinding
	Elapsed   time.Duration
}

// Called returns the findings the code reaches.
func (r vulnResult) Called() []vulnFinding {
	var out []vulnFinding
	for _, f := range r.Findings {
		if f.Level == "called" {
			out = append(out, f)
		}
	}
	return out
}

// govulncheck's JSON messages (its -format json protocol, v1.0.0).
type (
	vulnMessage struct {
		Config *struct {
			GoVersion string `json:"go_version"`
			DB        string `json:"db"`
		} `json:"config"`
		OSV *struct {
			ID      string `json:"id"`
			Summary string `json:"summary"`
		} `json:"osv"`
		Finding *struct {
			OSV          string      `json:"osv"`
			FixedVersion string      `json:"fixed_version"`
			Trace        []vulnFrame `json:"trace"`
		} `json:"finding"`
	}
	vulnFrame struct {
		Module   string `json:"module"`
		Version  string `json:"version"`
		Package  string `json:"package"`
		Function string `json:"function"`
		Receiver string `json:"receiver"`
		Position *struct {
			Filename string `json:"filename"`
			Line     int    `json:"line"`
		} `json:"position"`
	}
)

// parseVulnJSON reads govulncheck -format json output into one finding
// per vulnerability, at the deepest level reported for it.
func parseVulnJSON(r io.Reader) (goVersion string, findings []vulnFinding, err error) {
	rank := map[string]int{"required": 1, "imported": 2, "called": 3}
	byID := map[string]*vulnFinding{}
	summary := map[string]string{}
	dec := json.NewDecoder(r)
	for dec.More() {
		var m vulnMessage
		if err := dec.Decode(&m); err != nil {
			return "", nil, fmt.Errorf("govulncheck output: %w", err)
		}
		switch {
		case m.Config != nil:
			goVersion = m.Config.GoVersion
		case m.OSV != nil:
			summary[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			top := m.Finding.Trace[0]
			f := vulnFinding{ID: m.Finding.OSV, Module: top.Module, Found: top.Version, Fixed: m.Finding.FixedVersion, Level: "required"}
			switch {
			case top.Function != "":
				f.Level = "called"
				f.Trace = traceString(m.Finding.Trace)
			case top.Package != "":
				f.Level = "imported"
			}
			if old := byID[f.ID]; old == nil || rank[f.Level] > rank[old.Level] {
				byID[f.ID] = &f
			}
		}
	}
	for id, f := range byID {
		f.Summary = summary[id]
		findings = append(findings, *f)
	}
	sort.Slice(findings, func(i, j int) bool { return findings[i].ID < findings[j].ID })
	return goVersion, findings, nil
}

// traceString renders a call path from the code to the vulnerable symbol,
// outermost caller first.
func traceString(trace []vulnFrame) string {
	var parts []string
	for i := len(trace) - 1; i >= 0; i-- {
		f := trace[i]
		name := f.Function
		if f.Receiver != "" {
			name = strings.TrimPrefix(f.Receiver, "*") + "." + name
		}
		if f.Package != "" {
			name = f.Package[strings.LastIndex(f.Package, "/")+1:] + "." + name
		}
		if f.Position != nil && i == len(trace)-1 {
			name += fmt.Sprintf(" (%s:%d)", f.Position.Filename, f.Position.Line)
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, " → ")
}

// runGovulncheck runs govulncheck on the packages matching patterns, in
// dir, against db, offline.
func runGovulncheck(ctx context.Context, tool, dir string, db vulnDB, patterns ...string) (vulnResult, error) {
	start := time.Now()
	args := append([]string{"-db", "file://" + db.Dir, "-format", "json"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", tool}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	res := vulnResult{Tool: tool, DB: db, Elapsed: time.Since(start)}
	if err != nil {
		// With -format json, govulncheck exits 0 whatever it finds.
		return res, fmt.Errorf("%s: %v: %s", tool, err, strings.TrimSpace(errb.String()))
	}
	res.GoVersion, res.Findings, err = parseVulnJSON(&out)
	return res, err
}
