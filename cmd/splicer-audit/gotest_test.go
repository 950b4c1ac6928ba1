package main

import (
	"strings"
	"testing"
)

func TestParseTestEvents(t *testing.T) {
	const p = "github.com/splicerlb/splicer/x"
	stream := strings.Join([]string{
		`{"Action":"start","Package":"` + p + `"}`,
		`{"Action":"run","Package":"` + p + `","Test":"TestOK"}`,
		`{"Action":"pass","Package":"` + p + `","Test":"TestOK","Elapsed":0.1}`,
		`{"Action":"run","Package":"` + p + `","Test":"TestOK/sub"}`,
		`{"Action":"pass","Package":"` + p + `","Test":"TestOK/sub","Elapsed":0.1}`,
		`{"Action":"run","Package":"` + p + `","Test":"TestBad"}`,
		`{"Action":"output","Package":"` + p + `","Test":"TestBad","Output":"=== RUN   TestBad\n"}`,
		`{"Action":"output","Package":"` + p + `","Test":"TestBad","Output":"    bad_test.go:12: got 3, want 4\n"}`,
		`{"Action":"fail","Package":"` + p + `","Test":"TestBad","Elapsed":0.2}`,
		`{"Action":"output","Package":"` + p + `","Test":"TestSkip","Output":"    skip_test.go:7: install haproxy (Debian package haproxy) to run this test\n"}`,
		`{"Action":"skip","Package":"` + p + `","Test":"TestSkip","Elapsed":0}`,
		`{"Action":"output","Package":"` + p + `","Test":"TestRace","Output":"WARNING: DATA RACE\n"}`,
		`{"Action":"output","Package":"` + p + `","Test":"TestRace","Output":"    testing.go:1490: race detected during execution of test\n"}`,
		`{"Action":"fail","Package":"` + p + `","Test":"TestRace","Elapsed":0.3}`,
		`{"Action":"fail","Package":"` + p + `","Elapsed":1.5}`,
		`{"Action":"pass","Package":"` + p + `/ok","Elapsed":0.5}`,
		`# ` + p + `/broken`,
		`broken/x.go:3:1: syntax error`,
		`{"Action":"output","Package":"` + p + `/broken","Output":"FAIL\t` + p + `/broken [build failed]\n"}`,
		`{"Action":"fail","Package":"` + p + `/broken","Elapsed":0}`,
		`{"Action":"skip","Package":"` + p + `/none","Elapsed":0}`,
	}, "\n")
	var progress strings.Builder
	run, err := parseTestEvents(strings.NewReader(stream), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if run.Passed != 2 {
		t.Errorf("Passed = %d; want 2 (TestOK and its subtest)", run.Passed)
	}
	if len(run.Failed) != 2 || run.Failed[0].Test != "TestBad" || run.Failed[0].Why != "got 3, want 4" ||
		run.Failed[1].Package != p+"/broken" || !strings.Contains(run.Failed[1].Why, "build failed") {
		t.Errorf("Failed = %+v; want TestBad (got 3, want 4) and the broken package", run.Failed)
	}
	if len(run.Races) != 1 || run.Races[0].Test != "TestRace" {
		t.Errorf("Races = %+v; want TestRace", run.Races)
	}
	if len(run.Skipped) != 1 || run.Skipped[0].Why != "install haproxy (Debian package haproxy) to run this test" {
		t.Errorf("Skipped = %+v", run.Skipped)
	}
	if run.OK() {
		t.Error("OK() with failures and a race")
	}
	want := []packageResult{{p, "FAIL", 1500e6}, {p + "/broken", "FAIL", 0}, {p + "/none", "no tests", 0}, {p + "/ok", "ok", 500e6}}
	if len(run.Packages) != len(want) {
		t.Fatalf("Packages = %+v; want %+v", run.Packages, want)
	}
	for i := range want {
		if run.Packages[i] != want[i] {
			t.Errorf("Packages[%d] = %+v; want %+v", i, run.Packages[i], want[i])
		}
	}
	if !strings.Contains(progress.String(), "FAIL "+p+" 1.5s") || !strings.Contains(progress.String(), "ok   "+p+"/ok 0.5s") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestQuietWriter(t *testing.T) {
	var out strings.Builder
	q := &quietWriter{w: &out, drop: "warning: "}
	for _, chunk := range []string{"keep 1\nwarn", "ing: drop me\nkeep", " 2\n", "warning: dropped too\n"} {
		if n, err := q.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if out.String() != "keep 1\nkeep 2\n" {
		t.Errorf("passed %q; want the two kept lines", out.String())
	}
}
