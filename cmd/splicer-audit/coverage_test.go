package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadProfileMergesBlocks(t *testing.T) {
	profile := `mode: atomic
m/p/a.go:3.10,5.2 2 0
m/p/a.go:7.10,9.2 1 4
m/p/a.go:3.10,5.2 2 1
m/p/b.go:1.1,2.2 3 0
`
	got, err := readProfile(strings.NewReader(profile))
	if err != nil {
		t.Fatal(err)
	}
	a := got["m/p/a.go"]
	if len(a) != 2 || !a[0].covered || a[0].stmts != 2 || a[0].startLine != 3 || a[0].endLine != 5 || !a[1].covered {
		t.Errorf("a.go = %+v; want the first block covered by its second listing", a)
	}
	if b := got["m/p/b.go"]; len(b) != 1 || b[0].covered {
		t.Errorf("b.go = %+v", b)
	}
	for _, bad := range []string{"", "mode: set\nnonsense\n", "mode: set\nf.go:1.1,2.2 x 1\n"} {
		if _, err := readProfile(strings.NewReader(bad)); err == nil && bad != "" {
			t.Errorf("readProfile(%q) accepted it", bad)
		}
	}
	if _, err := readProfile(strings.NewReader("not a profile\n")); err == nil {
		t.Error("a profile without a mode line was accepted")
	}
}

func TestSummarize(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pkg", "x")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `package x

var v = func() int { return 1 }()

func Covered() int {
	return 1
}

func Partly(b bool) int {
	if b {
		return 1
	}
	return 2
}

type T struct{}

func (*T) Never() {
	println()
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgs := []goPackage{
		{ImportPath: module + "/pkg/x", Dir: dir, GoFiles: []string{"x.go"}},
		{ImportPath: module + "/pkg/testutil/y", Dir: filepath.Join(root, "pkg", "testutil", "y")},
	}
	blocks := map[string][]block{module + "/pkg/x/x.go": {
		{startLine: 3, endLine: 3, stmts: 1, covered: true},
		{startLine: 5, endLine: 7, stmts: 1, covered: true},
		{startLine: 9, endLine: 10, stmts: 1, covered: true},
		{startLine: 10, endLine: 12, stmts: 1, covered: false},
		{startLine: 13, endLine: 13, stmts: 1, covered: true},
		{startLine: 18, endLine: 20, stmts: 1, covered: false},
	}}
	res, err := summarize(pkgs, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 2 {
		t.Fatalf("Packages = %+v", res.Packages)
	}
	y, x := res.Packages[0], res.Packages[1]
	if x.Rel != "pkg/x" || x.Stmts != 6 || x.Covered != 4 || x.Excluded != "" {
		t.Errorf("pkg/x = %+v; want 4 of 6 statements", x)
	}
	if y.Rel != "pkg/testutil/y" || y.Excluded == "" || y.Stmts != 0 {
		t.Errorf("pkg/testutil/y = %+v; want excluded, no statements", y)
	}
	if len(x.Funcs) != 2 || x.Funcs[0].Name != "Partly" || x.Funcs[0].Uncalled || x.Funcs[1].Name != "T.Never" || !x.Funcs[1].Uncalled ||
		x.Funcs[1].File != "pkg/x/x.go" || x.Funcs[1].Line != 18 {
		t.Errorf("Funcs = %+v; want Partly (partly run) and T.Never (never run) at pkg/x/x.go:18", x.Funcs)
	}
	if cov, tot := res.Product(); cov != 4 || tot != 6 {
		t.Errorf("Product() = %d, %d; want 4, 6", cov, tot)
	}
	if res.MeetsBar() || len(res.BelowFloor()) != 1 {
		t.Errorf("66.7%% meets the bar (MeetsBar %v, BelowFloor %v)", res.MeetsBar(), res.BelowFloor())
	}
	var md strings.Builder
	writeCoverageTable(&md, res, 1)
	for _, want := range []string{"Product: **66.7%** of 6 statements", "| pkg/x | 6 | 4 | 66.7% | **below 85%** | `Partly` (1), … |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "testutil") {
		t.Errorf("the table lists a package that is not product code:\n%s", md.String())
	}
}

func TestExcludedWhy(t *testing.T) {
	for rel, excluded := range map[string]bool{
		"cmd/splicer": false, "cmd/splicer-bench": true, "pkg/testutil": true, "pkg/testutil/realdb": true,
		"pkg/testutilx": false, "l4": false, "l4/internal/sock/socktest": true, "l4/internal/sock": false,
	} {
		if got := excludedWhy(rel) != ""; got != excluded {
			t.Errorf("excludedWhy(%q) excluded = %v; want %v", rel, got, excluded)
		}
	}
}

// TestChildProcessCoverageCounted runs the tests of testdata/childcover as
// the coverage run does: its test runs the test binary as a program in
// three children, one that exits by itself, one stopped with SIGTERM that
// it handles, one killed with SIGKILL. The profile go test writes counts
// what the first two ran and not the third: the ground for counting the
// coverage of cmd/splicer's process tests, which stop their splicer
// children with SIGTERM when coverage is measured
// (testutil.StopProcesses). A Go release that stops passing GOCOVERDIR
// to test binaries fails it.
func TestChildProcessCoverageCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a test binary with coverage")
	}
	profile := filepath.Join(t.TempDir(), "child.out")
	cmd := exec.Command("go", "test", "-count=1", "-covermode=atomic", "-coverpkg=./...", "-coverprofile="+profile, ".")
	cmd.Dir = filepath.Join("testdata", "childcover")
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test in %s: %v\n%s", cmd.Dir, err, out)
	}
	f, err := os.Open(profile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks, err := readProfile(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks["childcover/main.go"] {
		got = append(got, fmt.Sprintf("%d-%d %d %v", b.startLine, b.endLine, b.stmts, b.covered))
	}
	want := []string{
		"15-15 1 true",  // main's switch: the children that exit and stop
		"17-17 1 true",  // case "exit"
		"19-23 5 true",  // case "term", up to the signal
		"25-27 3 false", // case "kill": it ran, and its counters died with it
		"29-29 1 true",  // os.Exit
		"34-35 1 true",  // exited
		"39-40 1 true",  // terminated, after the SIGTERM
		"44-45 1 false", // killed
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("childcover/main.go blocks (lines, statements, covered):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
