package main

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// fuzzTarget is one fuzz test of the module.
type fuzzTarget struct {
	Dir  string // package directory, relative to the module root
	Name string // FuzzXxx
}

// fuzzResult is how one fuzz run went.
type fuzzResult struct {
	fuzzTarget
	Ran         time.Duration // time spent fuzzing, as the fuzzer reports it
	Execs       int64         // inputs tried
	Interesting int           // new inputs that widened coverage in this run
	Corpus      int           // inputs in the corpus at the end (seeds, cache and new)
	Failure     string        // why it failed, "" when it passed
	Input       string        // the failing input the fuzzer wrote, under testdata/fuzz
}

// findFuzzTargets returns every fuzz test of the module: the functions
// `func FuzzXxx(f *testing.F)` of its _test.go files.
func findFuzzTargets(root string) ([]fuzzTarget, error) {
	var out []fuzzTarget
	fset := token.NewFileSet()
	err := walkGoFiles(root, true, func(path string) error {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Fuzz") && isFuzzParam(fd.Type.Params) {
				out = append(out, fuzzTarget{Dir: filepath.ToSlash(rel), Name: fd.Name.Name})
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dir != out[j].Dir {
			return out[i].Dir < out[j].Dir
		}
		return out[i].Name < out[j].Name
	})
	return out, err
}

// isFuzzParam reports whether params is the single *testing.F of a fuzz
// test.
func isFuzzParam(params *ast.FieldList) bool {
	if params == nil || len(params.List) != 1 || len(params.List[0].Names) > 1 {
		return false
	}
	star, ok := params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "F"
}

var (
	// fuzzProgress matches the fuzzer's status lines:
	// "fuzz: elapsed: 10s, execs: 171112 (17108/sec), new interesting: 6 (total: 99)".
	fuzzProgress = regexp.MustCompile(`fuzz: elapsed: (\d+)s, execs: (\d+) \(\d+/sec\), new interesting: (\d+) \(total: (\d+)\)`)
	// fuzzInput matches where the fuzzer wrote a failing input.
	fuzzInput = regexp.MustCompile(`Failing input written to (\S+)`)
)

// runFuzz fuzzes one target for d and reads the fuzzer's last status line.
func runFuzz(ctx context.Context, t fuzzTarget, d time.Duration) fuzzResult {
	res := fuzzResult{fuzzTarget: t}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.Name+"$", "-fuzztime", d.String(), "./"+t.Dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	text := out.String()
	if ms := fuzzProgress.FindAllStringSubmatch(text, -1); len(ms) > 0 {
		m := ms[len(ms)-1]
		secs, _ := strconv.Atoi(m[1])
		res.Ran = time.Duration(secs) * time.Second
		res.Execs, _ = strconv.ParseInt(m[2], 10, 64)
		res.Interesting, _ = strconv.Atoi(m[3])
		res.Corpus, _ = strconv.Atoi(m[4])
	}
	if err != nil {
		res.Failure = lastLines(text, 6)
		if m := fuzzInput.FindStringSubmatch(text); m != nil {
			res.Input = filepath.ToSlash(filepath.Join(t.Dir, m[1]))
		}
	} else if res.Execs == 0 {
		res.Failure = "the fuzzer reported no executions: " + lastLines(text, 3)
	}
	return res
}

// lastLines returns the last n non-empty lines of text, joined by " / ".
func lastLines(text string, n int) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// String names the target as the Makefile's FUZZ list does.
func (t fuzzTarget) String() string { return fmt.Sprintf("%s:%s", t.Dir, t.Name) }
