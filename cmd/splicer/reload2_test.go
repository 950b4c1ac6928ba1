package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/splicerlb/splicer/pkg/testutil"
)

const lastReloadMetric = "splicer_config_last_reload_success_timestamp_seconds"

// metricValue is the value of the unlabelled metric name in a scrape.
func metricValue(t testing.TB, metrics, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the metrics", name)
	return 0
}

// lineOf is the 1-based number of the line of text that contains s.
func lineOf(t testing.TB, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the config", s)
	return 0
}

// logLines returns the process's log lines from line from on.
func logLines(p *proc, from int) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(p.logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		if i >= from {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// TestReloadLogsProblemsTimestampAndFormat (issue 14, reload): a refused
// reload logs every problem as a line of its own, with the file, the line
// and the field, and leaves splicer_config_last_reload_success_timestamp_seconds
// where it was; a successful one moves that gauge to the reload's time;
// and a reload that changes the log format (JSON to console and back)
// changes the form of the very next line.
func TestReloadLogsProblemsTimestampAndFormat(t *testing.T) {
	dir := t.TempDir()
	e := startEcho(t)
	adminAddr, mainAddr := freeAddr(t), freeAddr(t)
	path := filepath.Join(dir, "splicer.toml")
	head := baseConfig(t, dir, adminAddr, 5*time.Second)
	withLog := func(format string) string {
		return strings.Replace(head, "[admin]", "[log]\nformat = \""+format+"\"\n\n[admin]", 1)
	}
	good := func(h string) string { return h + frontendConfig("main", mainAddr, "", be{"e0", e.addr, 1}) }
	writeFile(t, path, good(withLog("json")))
	started := time.Now()
	p := startSplicer(t, testBinary(t), path, adminAddr)
	ctx := context.Background()
	client := adminClient(t, dir, adminAddr)

	// The start counts as a load.
	t0 := metricValue(t, scrape(t, dir, adminAddr), lastReloadMetric)
	if now := float64(time.Now().UnixNano()) / 1e9; t0 < float64(started.Add(-time.Second).UnixNano())/1e9 || t0 > now {
		t.Errorf("%s at start = %f, want between the launch and now (%f)", lastReloadMetric, t0, now)
	}

	// 1. Refused, with two problems: one line each, located.
	bad := withLog("json") + frontendConfig("main", mainAddr, `strategy = "fastest"`, be{"e0", e.addr, 300})
	writeFile(t, path, bad)
	from := len(logLines(p, 0))
	res, _ := client.Reload(ctx)
	if res.OK || len(res.Problems) != 2 {
		t.Fatalf("the invalid config: %+v, want refused with 2 problems", res)
	}
	want := []struct {
		line  int
		field string
	}{
		{lineOf(t, bad, `strategy = "fastest"`), `frontend "main": strategy`},
		{lineOf(t, bad, `weight = 300`), `frontend "main": backend[0].weight`},
	}
	var refused []map[string]any
	testutil.WaitFor(t, 5*time.Second, "the refusal logged", func() bool {
		refused = refused[:0]
		done := false
		for _, l := range logLines(p, from) {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) != nil {
				continue
			}
			switch rec["message"] {
			case "reload refused":
				refused = append(refused, rec)
			case "reload refused: the previous configuration serves on":
				done = true
			}
		}
		return done
	})
	if len(refused) != len(want) {
		t.Fatalf("%d problem lines, want %d: %v", len(refused), len(want), refused)
	}
	for i, w := range want {
		rec := refused[i]
		if rec["level"] != "error" || rec["file"] != path || rec["line"] != float64(w.line) || rec["field"] != w.field ||
			rec["error"] != res.Problems[i].Message {
			t.Errorf("problem line %d: %v; want file %s, line %d, field %s, error %q", i, rec, path, w.line, w.field, res.Problems[i].Message)
		}
	}
	metrics := scrape(t, dir, adminAddr)
	if got := metricValue(t, metrics, lastReloadMetric); got != t0 {
		t.Errorf("%s moved to %f on a refused reload, want %f", lastReloadMetric, got, t0)
	}
	if !strings.Contains(metrics, `splicer_config_reloads_total{result="failure"} 1`+"\n") {
		t.Error("the refused reload is not counted")
	}

	// 2. Accepted, switching to the console format: the gauge moves to
	// the reload's time, and the reload's own line is in console form.
	writeFile(t, path, good(withLog("console")))
	from = len(logLines(p, 0))
	before := time.Now()
	if res, err := client.Reload(ctx); err != nil || !res.OK {
		t.Fatalf("reload to console: %+v, %v", res, err)
	}
	after := time.Now()
	got := metricValue(t, scrape(t, dir, adminAddr), lastReloadMetric)
	// The gauge's float64 keeps about 0.2 µs at today's Unix time.
	if lo, hi := float64(before.UnixNano())/1e9, float64(after.UnixNano())/1e9; got < lo-1e-6 || got > hi+1e-6 {
		t.Errorf("%s = %f after a reload between %f and %f", lastReloadMetric, got, lo, hi)
	}
	next := nextLine(t, p, from, "configuration reloaded")
	if json.Valid([]byte(next)) || !strings.Contains(next, " INF ") {
		t.Errorf("the line after the switch to console is %q, want the console form (time INF message fields)", next)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", strings.Fields(next)[0]); err != nil {
		t.Errorf("the console line %q does not start with the time: %v", next, err)
	}

	// 3. And back to JSON.
	writeFile(t, path, good(withLog("json")))
	from = len(logLines(p, 0))
	if res, err := client.Reload(ctx); err != nil || !res.OK {
		t.Fatalf("reload to json: %+v, %v", res, err)
	}
	next = nextLine(t, p, from, "configuration reloaded")
	var rec map[string]any
	if err := json.Unmarshal([]byte(next), &rec); err != nil || rec["message"] != "configuration reloaded" || rec["level"] != "info" {
		t.Errorf("the line after the switch back to JSON is %q (%v), want a JSON record", next, err)
	}
	if got2 := metricValue(t, scrape(t, dir, adminAddr), lastReloadMetric); got2 <= got || math.IsNaN(got2) {
		t.Errorf("%s did not move on the third reload: %f then %f", lastReloadMetric, got, got2)
	}
}

// nextLine waits for the first log line from line from on that contains
// msg, and checks that it is the first line logged since, but for the
// admin's "reload requested" (logged before the new config is read): the
// format change applies to the very next line.
func nextLine(t *testing.T, p *proc, from int, msg string) string {
	t.Helper()
	var first string
	testutil.WaitFor(t, 5*time.Second, "a line with "+msg, func() bool {
		var before []string
		for _, l := range logLines(p, from) {
			switch {
			case strings.Contains(l, msg):
				first = l
				if len(before) != 0 {
					t.Errorf("lines logged before %q: %q", msg, before)
				}
				return true
			case !strings.Contains(l, "reload requested"):
				before = append(before, l)
			}
		}
		return false
	})
	return first
}
