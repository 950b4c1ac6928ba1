package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"
)

// testEvent is one line of `go test -json` (cmd/test2json).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// testResult is one test that did not simply pass: a failure, a skip or a
// reported data race, with the lines that explain it.
type testResult struct {
	Package, Test string
	Why           string
}

// packageResult is how one package's tests ended.
type packageResult struct {
	Package string
	Status  string // "ok", "FAIL", or "no tests"
	Elapsed time.Duration
}

// testRun is what a `go test -json` run reported.
type testRun struct {
	Packages []packageResult
	Failed   []testResult // tests that failed, and packages that failed without a failing test (build or setup errors, a panic, a timeout)
	Races    []testResult // tests during which the race detector reported a data race
	Skipped  []testResult // tests that skipped, with their message
	Passed   int          // tests and subtests that passed
	Elapsed  time.Duration
}

// OK reports whether every test passed without a data race.
func (r *testRun) OK() bool { return len(r.Failed) == 0 && len(r.Races) == 0 }

// skipLine matches the line t.Skip and t.Fatal print: "    file_test.go:12: message".
var skipLine = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)

// parseTestEvents reads `go test -json` output. progress, when not nil,
// gets one line per finished package, as `go test` prints it.
func parseTestEvents(r io.Reader, progress io.Writer) (*testRun, error) {
	run := &testRun{}
	type key struct{ pkg, test string }
	output := map[key][]string{}
	raced := map[key]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e testEvent
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// The go command's own messages (build errors) are not JSON.
			if s := strings.TrimSpace(string(line)); s != "" {
				output[key{"", ""}] = append(output[key{"", ""}], s)
			}
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			output[k] = append(output[k], strings.TrimRight(e.Output, "\n"))
			if strings.Contains(e.Output, "WARNING: DATA RACE") || strings.Contains(e.Output, "race detected during execution of test") {
				raced[k] = true
			}
		case "pass", "fail", "skip":
			if e.Test != "" {
				switch {
				case raced[k]:
					run.Races = append(run.Races, testResult{e.Package, e.Test, "data race reported"})
				case e.Action == "fail":
					run.Failed = append(run.Failed, testResult{e.Package, e.Test, explain(output[k], false)})
				case e.Action == "skip":
					run.Skipped = append(run.Skipped, testResult{e.Package, e.Test, explain(output[k], true)})
				default:
					run.Passed++
				}
				delete(output, k)
				continue
			}
			status := map[string]string{"pass": "ok", "fail": "FAIL", "skip": "no tests"}[e.Action]
			run.Packages = append(run.Packages, packageResult{e.Package, status, time.Duration(e.Elapsed * float64(time.Second))})
			if e.Action == "fail" && !hasTest(run.Failed, e.Package) {
				run.Failed = append(run.Failed, testResult{e.Package, "", explain(output[k], false)})
			}
			if raced[k] && !hasTest(run.Races, e.Package) {
				run.Races = append(run.Races, testResult{e.Package, "", "data race reported outside a test"})
			}
			if progress != nil {
				fmt.Fprintf(progress, "%-4s %s %.1fs\n", status, e.Package, e.Elapsed)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return run, err
	}
	if lines := output[key{"", ""}]; len(lines) > 0 && len(run.Packages) == 0 {
		run.Failed = append(run.Failed, testResult{"", "", explain(lines, false)})
	}
	sort.Slice(run.Packages, func(i, j int) bool { return run.Packages[i].Package < run.Packages[j].Package })
	return run, nil
}

// explain picks the lines that say why a test skipped or failed: the
// messages of t.Skip / t.Error, else the last lines of its output.
func explain(lines []string, skip bool) string {
	var msgs []string
	for _, l := range lines {
		if m := skipLine.FindStringSubmatch(l); m != nil {
			msgs = append(msgs, m[1])
		}
	}
	if skip && len(msgs) > 0 {
		return msgs[len(msgs)-1]
	}
	if len(msgs) == 0 {
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") || l == "FAIL" || l == "PASS" {
				continue
			}
			msgs = append(msgs, l)
		}
	}
	if len(msgs) > 3 {
		msgs = msgs[len(msgs)-3:]
	}
	return strings.Join(msgs, " / ")
}

// hasTest reports whether rs holds a result of package pkg.
func hasTest(rs []testResult, pkg string) bool {
	for _, r := range rs {
		if r.Package == pkg {
			return true
		}
	}
	return false
}

// goTest runs `go test -json args...` in the module root and parses its
// events, passing one line per finished package to progress.
func goTest(ctx context.Context, args []string, progress io.Writer) (*testRun, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = &quietWriter{w: os.Stderr, drop: "warning: no packages being tested depend on matches for pattern"}
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	run, perr := parseTestEvents(stdout, progress)
	werr := cmd.Wait()
	run.Elapsed = time.Since(start)
	if perr != nil {
		return run, perr
	}
	if ctx.Err() != nil {
		return run, ctx.Err()
	}
	if werr != nil && run.OK() {
		// go test exits 1 when a test fails, which the run records; a
		// failure with no failed test is one of the go command's own.
		run.Failed = append(run.Failed, testResult{Why: fmt.Sprintf("go test: %v", werr)})
	}
	return run, nil
}

// quietWriter passes lines to w except those starting with drop: go test
// warns, for every test binary, of each -coverpkg package it does not
// import, which says nothing when the tests of a subset run.
type quietWriter struct {
	w    io.Writer
	drop string
	buf  []byte
}

func (q *quietWriter) Write(p []byte) (int, error) {
	q.buf = append(q.buf, p...)
	for {
		i := bytes.IndexByte(q.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := q.buf[:i+1]
		if !bytes.HasPrefix(line, []byte(q.drop)) {
			if _, err := q.w.Write(line); err != nil {
				return len(p), err
			}
		}
		q.buf = q.buf[i+1:]
	}
}
