package main

import (
	"math"
	"strings"
	"testing"
)

// benchstatCSV is the shape of `benchstat -format csv base=... head=...`
// (golang.org/x/perf v0.0.0-20260908200009): a table per unit and
// package.
const benchstatCSV = `goos: linux
goarch: amd64
pkg: github.com/splicerlb/splicer/pkg/balance
,base,,head,,,
,sec/op,CI,sec/op,CI,vs base,P
Pick/maglev/n=4/serial,1.0000000000000001e-07,2%,1.105e-07,2%,+10.50%,p=0.002 n=10
Pick/p2c/n=4/serial,5e-08,3%,5.2e-08,4%,~,p=0.300 n=10
Pick/leastconn/n=4/serial,5e-08,40%,5.2e-08,35%,~,p=0.600 n=10
Pick/roundrobin/n=4/serial,1e-08,1%,1.2e-08,2%,+20.00%,p=0.040 n=10
New-2,,,5.0000000000000004e-08,∞
geomean,7.071067811865489e-08,,6.512795308612752e-08,,+5.12%,

,base,,head,,,
,allocs/op,CI,allocs/op,CI,vs base,P
Pick/maglev/n=4/serial,0,0%,1,0%,+Inf%,p=0.000 n=10
geomean,,,,,+0.00%,

pkg: github.com/splicerlb/splicer/l4/internal/splice
,base,,head,,,
,B/s,CI,B/s,CI,vs base,P
Pump/pipe/16384B,1e+09,1%,8e+08,1%,-20.00%,p=0.000 n=10
`

func TestParseBenchstatCSV(t *testing.T) {
	rows, err := parseBenchstatCSV(strings.NewReader(benchstatCSV))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]benchRow{}
	for _, r := range rows {
		byName[r.Name+" "+r.Unit] = r
	}
	const balance = "github.com/splicerlb/splicer/pkg/balance"
	check := func(key string, wantDelta, wantP float64, wantRegressed, wantInconclusive bool) {
		t.Helper()
		r, ok := byName[key]
		if !ok {
			t.Fatalf("no row %q in %+v", key, rows)
		}
		if math.Abs(r.Delta-wantDelta) > 1e-9 && !(math.IsInf(wantDelta, 1) && math.IsInf(r.Delta, 1)) {
			t.Errorf("%s: Delta = %v; want %v", key, r.Delta, wantDelta)
		}
		if r.P != wantP {
			t.Errorf("%s: P = %v; want %v", key, r.P, wantP)
		}
		if got := r.Regressed(0.05, 0.01); got != wantRegressed {
			t.Errorf("%s: Regressed = %v; want %v", key, got, wantRegressed)
		}
		if got := r.Inconclusive(0.05, 0.01); got != wantInconclusive {
			t.Errorf("%s: Inconclusive = %v; want %v", key, got, wantInconclusive)
		}
	}
	// 10.5% slower, p = 0.002 < 0.01: a regression.
	check("Pick/maglev/n=4/serial sec/op", 0.105, 0.002, true, false)
	// 4% slower, not significant, spreads of 3-4%: a pass.
	check("Pick/p2c/n=4/serial sec/op", 0.04, 0.3, false, false)
	// Spreads of 40%: a 5% change could hide in them.
	check("Pick/leastconn/n=4/serial sec/op", 0.04, 0.6, false, true)
	// 20% slower, but p = 0.04 is not below alpha = 0.01.
	check("Pick/roundrobin/n=4/serial sec/op", 0.2, 0.04, false, false)
	// An allocation where there was none.
	check("Pick/maglev/n=4/serial allocs/op", math.Inf(1), 0, true, false)
	// A throughput 20% lower is 25% more time per byte.
	check("Pump/pipe/16384B B/s", 0.25, 0, true, false)
	if r := byName["New-2 sec/op"]; r.HasBase || r.Regressed(0.05, 0.01) || r.Inconclusive(0.05, 0.01) {
		t.Errorf("a benchmark new in head: %+v; want no baseline, no verdict", r)
	}
	if r := byName["Pick/maglev/n=4/serial sec/op"]; r.Pkg != balance || r.N != 10 || r.Spread != 0.02 {
		t.Errorf("row = %+v; want package %s, n=10, spread 2%%", r, balance)
	}
	if r := byName["Pump/pipe/16384B B/s"]; r.Pkg != "github.com/splicerlb/splicer/l4/internal/splice" {
		t.Errorf("Pump's package = %q", r.Pkg)
	}
	for _, h := range hotPaths {
		if h.pkg == "./pkg/balance" && !benchInPath(h, byName["Pick/maglev/n=4/serial sec/op"]) {
			t.Errorf("Pick is not in the balance hot path")
		}
		if h.pkg != "./pkg/balance" && benchInPath(h, byName["Pick/maglev/n=4/serial sec/op"]) {
			t.Errorf("Pick counted in %s", h.pkg)
		}
	}
}

func TestCheckCoverageNamesMissingHotPath(t *testing.T) {
	var rows []benchRow
	for _, h := range hotPaths {
		name := strings.TrimPrefix(strings.Trim(strings.Split(h.bench, "/")[0], "^$"), "Benchmark")
		if strings.HasPrefix(name, "(") { // an alternation: take its first name
			name = strings.TrimPrefix(strings.SplitN(strings.Trim(name, "()"), "|", 2)[0], "(")
		}
		rows = append(rows, benchRow{Pkg: module + "/" + strings.TrimPrefix(h.pkg, "./"), Name: name, Unit: "sec/op"})
	}
	if err := checkCoverage(rows, hotPaths); err != nil {
		t.Fatalf("every hot path has a row, yet: %v", err)
	}
	err := checkCoverage(rows[1:], hotPaths)
	if err == nil || !strings.Contains(err.Error(), hotPaths[0].pkg) {
		t.Errorf("checkCoverage without %s = %v; want an error naming it", hotPaths[0].pkg, err)
	}
}

func TestParseSpread(t *testing.T) {
	for in, want := range map[string]float64{"2%": 0.02, " 69% ": 0.69, "∞": math.Inf(1), "?": math.Inf(1), "": math.Inf(1)} {
		if got := parseSpread(in); got != want {
			t.Errorf("parseSpread(%q) = %v; want %v", in, got, want)
		}
	}
}
