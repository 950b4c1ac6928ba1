package main

import (
	"strings"
	"testing"
	"time"
)

func TestStaticcheckLine(t *testing.T) {
	m := staticcheckLine.FindStringSubmatch("pkg/x/f.go:12:3: this value of err is never used (SA4006)")
	if m == nil || m[1] != "pkg/x/f.go:12:3" || m[2] != "this value of err is never used" || m[3] != "SA4006" {
		t.Errorf("match = %q", m)
	}
	if staticcheckLine.MatchString("-: # github.com/x\nbuild error") {
		t.Error("a build error matched as a finding")
	}
}

// vulnJSON is govulncheck -format json output (protocol v1.0.0) for one
// vulnerability reported at the three levels and one only required.
const vulnJSON = `{"config": {"protocol_version": "v1.0.0", "go_version": "go1.26.8", "db": "file:///db"}}
{"progress": {"message": "Scanning your code..."}}
{"osv": {"id": "GO-2026-6617", "summary": "HTTP/2 server crash due to HPACK encoder race in net/http"}}
{"osv": {"id": "GO-2026-0002", "summary": "Something in a module"}}
{"finding": {"osv": "GO-2026-6617", "fixed_version": "v1.26.9", "trace": [{"module": "stdlib", "version": "v1.26.8"}]}}
{"finding": {"osv": "GO-2026-6617", "fixed_version": "v1.26.9", "trace": [{"module": "stdlib", "version": "v1.26.8", "package": "net/http"}]}}
{"finding": {"osv": "GO-2026-6617", "fixed_version": "v1.26.9", "trace": [
  {"module": "stdlib", "version": "v1.26.8", "package": "net/http", "function": "Serve", "receiver": "*Server"},
  {"module": "github.com/splicerlb/splicer", "package": "github.com/splicerlb/splicer/pkg/admin", "function": "Run", "position": {"filename": "pkg/admin/server.go", "line": 40}}]}}
{"finding": {"osv": "GO-2026-0002", "fixed_version": "v0.2.0", "trace": [{"module": "example.com/m", "version": "v0.1.0"}]}}
`

func TestParseVulnJSON(t *testing.T) {
	goVersion, findings, err := parseVulnJSON(strings.NewReader(vulnJSON))
	if err != nil {
		t.Fatal(err)
	}
	if goVersion != "go1.26.8" || len(findings) != 2 {
		t.Fatalf("go %q, findings %+v", goVersion, findings)
	}
	mod, std := findings[0], findings[1]
	if mod.ID != "GO-2026-0002" || mod.Level != "required" || mod.Module != "example.com/m" || mod.Fixed != "v0.2.0" {
		t.Errorf("module finding = %+v", mod)
	}
	if std.ID != "GO-2026-6617" || std.Level != "called" || std.Module != "stdlib" || std.Found != "v1.26.8" || std.Fixed != "v1.26.9" ||
		std.Summary != "HTTP/2 server crash due to HPACK encoder race in net/http" {
		t.Errorf("stdlib finding = %+v", std)
	}
	if want := "admin.Run (pkg/admin/server.go:40) → http.Server.Serve"; std.Trace != want {
		t.Errorf("trace = %q; want %q", std.Trace, want)
	}
	res := vulnResult{GoVersion: goVersion, Findings: findings}
	if called := res.Called(); len(called) != 1 || called[0].ID != "GO-2026-6617" {
		t.Errorf("Called() = %+v", called)
	}
	advice := vulnAdvice(&res)
	if !strings.Contains(advice, "1 are in the standard library of go1.26.8") || !strings.Contains(advice, "go1.26.9") {
		t.Errorf("advice = %q", advice)
	}
	if _, _, err := parseVulnJSON(strings.NewReader(`{"config": `)); err == nil {
		t.Error("truncated output parsed")
	}
}

func TestSemverLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"", "v1.26.9", true}, {"v1.26.9", "v1.26.10", true}, {"v1.26.10", "v1.26.9", false}, {"v1.26.9", "v1.26.9", false}, {"v1.9", "v1.10.0", true}} {
		if got := semverLess(tc.a, tc.b); got != tc.want {
			t.Errorf("semverLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestFindFuzzTargets(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) { writeTree(t, root, map[string]string{rel: text}) }
	write("a/a_test.go", `package a
import "testing"
func FuzzB(f *testing.F) {}
func FuzzA(f *testing.F) {}
func FuzzNotATarget(t *testing.T) {}
func fuzzHelper(f *testing.F) {}
`)
	write("a/a.go", "package a\nimport \"testing\"\nfunc FuzzInLibrary(f *testing.F) {}\n")
	write("b/c/c_test.go", "package c\nimport \"testing\"\nfunc FuzzC(f *testing.F) {}\n")
	write("b/testdata/d_test.go", "package d\nimport \"testing\"\nfunc FuzzD(f *testing.F) {}\n")
	got, err := findFuzzTargets(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, f.String())
	}
	if want := "a:FuzzA a:FuzzB b/c:FuzzC"; strings.Join(names, " ") != want {
		t.Errorf("targets = %v; want %s", names, want)
	}
}

func TestFuzzOutput(t *testing.T) {
	out := `fuzz: elapsed: 0s, gathering baseline coverage: 93/93 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 51159 (17050/sec), new interesting: 6 (total: 99)
fuzz: elapsed: 10s, execs: 171112 (17108/sec), new interesting: 8 (total: 101)
--- FAIL: FuzzParse (10.02s)
    Failing input written to testdata/fuzz/FuzzParse/4a5b
`
	ms := fuzzProgress.FindAllStringSubmatch(out, -1)
	if len(ms) != 2 || ms[1][1] != "10" || ms[1][2] != "171112" || ms[1][3] != "8" || ms[1][4] != "101" {
		t.Errorf("progress matches = %q", ms)
	}
	if m := fuzzInput.FindStringSubmatch(out); m == nil || m[1] != "testdata/fuzz/FuzzParse/4a5b" {
		t.Errorf("input match = %q", m)
	}
	if got := lastLines(out, 2); got != "--- FAIL: FuzzParse (10.02s) / Failing input written to testdata/fuzz/FuzzParse/4a5b" {
		t.Errorf("lastLines = %q", got)
	}
}

func TestReportOfAFailedAudit(t *testing.T) {
	a := &audit{
		Started: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), Commit: "abc123", Load: "1.0 1.0 1.0",
		Steps: map[string]time.Duration{"tests": time.Minute, "docs": time.Second},
		Run: &testRun{Passed: 10, Failed: []testResult{{Package: "m/x", Test: "TestY", Why: "got 1, want 2"}},
			Skipped: []testResult{{Package: "m/x", Test: "TestZ", Why: "install haproxy"}}},
		Coverage: coverageResult{Packages: []pkgCoverage{{Rel: "l4", Stmts: 100, Covered: 80,
			Funcs: []funcCoverage{{Name: "conn.end", Stmts: 20, Covered: 0, Uncalled: true}}}}},
		Docs: []docCount{{pkg: "l4", names: 3, undocumented: []exported{{pkg: "l4", name: "Server.Foo", file: "l4/server.go", line: 9}}}},
	}
	opts := reportOptions{steps: map[string]bool{"tests": true, "docs": true}, race: true}
	if a.ok(opts) {
		t.Fatal("an audit with a failed test, low coverage and an undocumented name is ok")
	}
	var md strings.Builder
	writeReport(&md, a, opts)
	for _, want := range []string{
		"at commit abc123",
		"| tests under the race detector | every test passes, no data race | 10 passed, 1 failed, 0 data races, 1 skipped | **below** | 1m0s |",
		"| documented exported names | 100% | 2 of 3 (66.7%) | **below** |",
		"- test m/x TestY failed: got 1, want 2",
		"- package l4 is at 80.0%, under the 85% floor",
		"- l4/server.go:9: exported Server.Foo has no doc comment",
		"- install haproxy (1): m/x TestZ",
		"never run: `conn.end`",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "## staticcheck") {
		t.Error("the report has a section for a step that did not run")
	}
}
