package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"time"
)

// resultsFile is the machine-readable record of a run (-json): what the
// plots are drawn from, and what a later reader compares runs by.
type resultsFile struct {
	Date     string            `json:"date"`
	Kernel   string            `json:"kernel"`
	CPU      string            `json:"cpu"`
	Cores    int               `json:"cores"`
	Command  []string          `json:"command"`
	Versions map[string]string `json:"versions"`
	// Columns are the targets measured, in report order.
	Columns []string    `json:"columns"`
	Rows    []resultRow `json:"rows"`
	Notes   []string    `json:"notes,omitempty"`
	// Pick is BenchmarkPick from the -gobench output, when given.
	Pick []pickResult `json:"pick,omitempty"`
}

// resultRow is one metric: its stable key, its label with the unit, and
// each target's median and rounds.
type resultRow struct {
	Key         string                  `json:"key"`
	Label       string                  `json:"label"`
	LowerBetter bool                    `json:"lower_better"`
	Values      map[string]resultValues `json:"values"`
}

// resultValues are one target's values for a row: the median of the
// successful rounds, and every round in order (null for a failed one).
type resultValues struct {
	Median *float64   `json:"median"`
	Rounds []*float64 `json:"rounds"`
}

// pickResult is one BenchmarkPick case.
type pickResult struct {
	Strategy string  `json:"strategy"`
	Backends int     `json:"backends"`
	Mode     string  `json:"mode"` // serial or parallel
	NsPerOp  float64 `json:"ns_per_op"`
}

// writeResultsFile writes the results of the run to path, with the Pick
// costs read from gobench when it is not "".
func writeResultsFile(path, gobench string, tl *tools, args, cols []string, rows []metric, res *results) error {
	f := resultsFile{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Kernel:   readTrimmed("/proc/sys/kernel/osrelease"),
		CPU:      cpuModel(),
		Cores:    runtime.NumCPU(),
		Command:  args,
		Versions: tl.versions,
		Columns:  cols,
		Notes:    res.notes,
	}
	for _, m := range rows {
		row := resultRow{Key: m.key(), Label: m.spec().label, LowerBetter: m.lowerBetter(), Values: map[string]resultValues{}}
		for _, c := range cols {
			s, ok := res.samples[c]
			if !ok || len(s[m]) == 0 {
				continue
			}
			var v resultValues
			if med, ok := res.median(c, m); ok {
				v.Median = &med
			}
			for _, x := range s[m] {
				if x.failed {
					v.Rounds = append(v.Rounds, nil)
				} else {
					v.Rounds = append(v.Rounds, &x.value)
				}
			}
			row.Values[c] = v
		}
		f.Rows = append(f.Rows, row)
	}
	if gobench != "" {
		var err error
		if f.Pick, err = readPickBench(gobench); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results file: %w", err)
	}
	return nil
}

// readResultsFile reads a results file written by writeResultsFile.
func readResultsFile(path string) (*resultsFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results file: %w", err)
	}
	var f resultsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read results file %s: %w", path, err)
	}
	return &f, nil
}

// pickLine matches a BenchmarkPick result line of go test -bench, such as
// "BenchmarkPick/maglev/n=100/serial-2   123   9.87 ns/op   0 B/op".
var pickLine = regexp.MustCompile(`^BenchmarkPick/([^/\s]+)/n=(\d+)/(serial|parallel)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op`)

// readPickBench reads the BenchmarkPick lines of a go test -bench output.
func readPickBench(path string) ([]pickResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read -gobench: %w", err)
	}
	defer f.Close()
	picks, err := parsePickBench(bufio.NewScanner(f))
	if err != nil {
		return nil, fmt.Errorf("read -gobench %s: %w", path, err)
	}
	return picks, nil
}

// parsePickBench reads BenchmarkPick lines from sc.
func parsePickBench(sc *bufio.Scanner) ([]pickResult, error) {
	var picks []pickResult
	for sc.Scan() {
		m := pickLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, err1 := strconv.Atoi(m[2])
		ns, err2 := strconv.ParseFloat(m[4], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad benchmark line %q", sc.Text())
		}
		picks = append(picks, pickResult{Strategy: m[1], Backends: n, Mode: m[3], NsPerOp: ns})
	}
	return picks, sc.Err()
}
