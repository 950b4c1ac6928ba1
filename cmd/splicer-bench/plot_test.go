package main

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wellFormed fails the test unless doc parses as XML.
func wellFormed(t *testing.T, name, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v\n%s", name, err, doc)
		}
	}
}

// TestResultsFileAndPlots writes a results file from sample results and a
// go test -bench output, reads it back, and draws every plot from it.
func TestResultsFileAndPlots(t *testing.T) {
	dir := t.TempDir()
	res := sampleResults()
	res.record(targetSplicer, map[metric]float64{growthCPU16: 9.5, growthCPU256: 10.1, growthCPU4096: 12.4, idle1kRSS: 1.2, idleHeld: 8000})
	res.record(targetHAProxy, map[metric]float64{growthCPU16: 11, growthCPU256: 11.5, growthCPU4096: 14, idle1kRSS: 3.1, idleHeld: 8000})
	gobench := filepath.Join(dir, "gobench.txt")
	bench := "BenchmarkPick/roundrobin/n=10/serial-2 \t1000\t 11.5 ns/op\n" +
		"BenchmarkPick/roundrobin/n=100/serial-2 \t1000\t 11.9 ns/op\n" +
		"BenchmarkPick/maglev/n=10/serial-2 \t1000\t 20.1 ns/op\n" +
		"BenchmarkPick/maglev/n=100/serial-2 \t1000\t 20.3 ns/op\n"
	if err := os.WriteFile(gobench, []byte(bench), 0o644); err != nil {
		t.Fatal(err)
	}
	tl := &tools{versions: map[string]string{"splicer": "splicer test"}}
	cols := []string{targetDirect, targetSplicer, targetHAProxy, targetNginx}
	rows := []metric{iperf1Gbps, connRate, idleHeld, idleRSS, growthCPU16, growthCPU256, growthCPU4096, idle1kRSS}
	path := filepath.Join(dir, "results.json")
	if err := writeResultsFile(path, gobench, tl, []string{"-rounds", "3"}, cols, rows, res); err != nil {
		t.Fatal(err)
	}
	f, err := readResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.median("iperf1_gbps", targetSplicer); !ok || v != 32 {
		t.Errorf("splicer's iperf3 median %v (%v), want 32", v, ok)
	}
	if r := f.row("conn_rate"); r == nil || len(r.Values[targetSplicer].Rounds) != 3 || r.Values[targetSplicer].Rounds[1] != nil {
		t.Errorf("splicer's connection-rate rounds %+v, want three with the second failed", r)
	}
	if len(f.Pick) != 4 || f.Pick[2] != (pickResult{"maglev", 10, "serial", 20.1}) {
		t.Errorf("picks %+v", f.Pick)
	}

	out := filepath.Join(dir, "svg")
	if err := plotFile(path, out); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		plotSideBySide: {"iperf3 1 stream (Gbit/s) · higher is better", "proxy RSS per idle connection (KiB) · lower is better", ">32<"},
		plotRequests:   {"concurrent connections", ">4096<", ">splicer<", ">haproxy<"},
		plotIdle:       {">1000<", ">8000<"},
		plotPick:       {">roundrobin<", ">maglev<", ">100<"},
	} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, name, string(b))
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.7: 1, 1: 1, 1.3: 2, 3: 5, 7: 10, 23: 50, 0.012: 0.02} {
		if got := niceStep(raw); got < want*0.999 || got > want*1.001 {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}
