package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// keyMetrics are the rows of the ratio table: the ones the project sets goals
// on, and the throughput and latency figures quoted beside them, UDP's
// included.
func keyMetrics() []metric {
	return []metric{iperf1Gbps, iperf8Gbps, connRate, connCPUPer1000, reqRate, reqP99, idleRSS, idleFDs,
		udpReqRate, udpReqP99, udpQueryRate, redisSetRate, redisGetRate, pgTPS}
}

// medianOf returns a target's median for the metric being checked.
type medianOf func(target string) (float64, bool)

// goal is one of the project's goals for splicer, checked on the medians.
type goal struct {
	text string
	// check reports whether the goal is met; ok is false when a median it
	// needs is missing, so nothing can be said.
	check func(med medianOf) (met, ok bool)
}

// goals returns the project's goals by metric.
func goals() map[metric]goal {
	return map[metric]goal{
		iperf1Gbps: {"≥ 0.75× direct and ≥ 1.5× haproxy", func(med medianOf) (bool, bool) {
			s, d, h, ok := med3(med, targetSplicer, targetDirect, targetHAProxy)
			return s >= 0.75*d && s >= 1.5*h, ok
		}},
		connRate: {"≥ 1.2× the best of haproxy and nginx", atLeastBest(1.2)},
		connCPUPer1000: {"below both haproxy and nginx", func(med medianOf) (bool, bool) {
			s, h, n, ok := med3(med, targetSplicer, targetHAProxy, targetNginx)
			return s < h && s < n, ok
		}},
		reqRate: {"≥ 1.1× the best of haproxy and nginx", atLeastBest(1.1)},
		// Issue 22: real servers' own benchmark clients.
		redisSetRate: {"≥ 1.1× the best of haproxy and nginx", atLeastBest(1.1)},
		redisGetRate: {"≥ 1.1× the best of haproxy and nginx", atLeastBest(1.1)},
		pgTPS:        {"≥ 1.1× the best of haproxy and nginx", atLeastBest(1.1)},
		idleRSS: {"≤ 2 KiB", func(med medianOf) (bool, bool) {
			s, ok := med(targetSplicer)
			return s <= 2, ok
		}},
		idleFDs: {"exactly 2", func(med medianOf) (bool, bool) {
			s, ok := med(targetSplicer)
			return math.Abs(s-2) < 0.005, ok // exact at the table's precision
		}},
	}
}

// atLeastBest is the goal "splicer ≥ factor × max(haproxy, nginx)".
func atLeastBest(factor float64) func(medianOf) (bool, bool) {
	return func(med medianOf) (bool, bool) {
		s, h, n, ok := med3(med, targetSplicer, targetHAProxy, targetNginx)
		return s >= factor*max(h, n), ok
	}
}

// med3 looks up three targets' medians; ok only when all three exist.
func med3(med medianOf, a, b, c string) (va, vb, vc float64, ok bool) {
	va, okA := med(a)
	vb, okB := med(b)
	vc, okC := med(c)
	return va, vb, vc, okA && okB && okC
}

// writeReport writes the main table (rows the metrics of the tests run, in
// report order; columns cols), the ratios of splicer to the others with
// the goals, the notes and the per-round values.
func writeReport(w io.Writer, cols []string, rows []metric, res *results) {
	writeMainTable(w, cols, rows, res)
	fmt.Fprintln(w)
	writeRatioTable(w, rows, res)
	writeLogCost(w, res)
	writeNotes(w, res)
	writeRounds(w, cols, rows, res)
}

// writeMainTable writes one markdown table of medians.
func writeMainTable(w io.Writer, cols []string, rows []metric, res *results) {
	fmt.Fprintf(w, "| metric (median of rounds) | %s |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(cols)))
	for _, m := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = res.cell(c, m)
		}
		fmt.Fprintf(w, "| %s | %s |\n", m.spec().label, strings.Join(cells, " | "))
	}
}

// writeRatioTable writes splicer's medians over direct's, HAProxy's and
// nginx's for the key metrics among rows, beside the goal and whether
// it is met.
func writeRatioTable(w io.Writer, rows []metric, res *results) {
	others := []string{targetDirect, targetHAProxy, targetNginx}
	gs := goals()
	fmt.Fprintln(w, "| metric | splicer/direct | splicer/haproxy | splicer/nginx | goal | verdict |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
	for _, m := range keyMetrics() {
		if !slices.Contains(rows, m) {
			continue
		}
		s, sok := res.median(targetSplicer, m)
		cells := make([]string, len(others))
		for i, o := range others {
			cells[i] = "-"
			if v, ok := res.median(o, m); ok && sok && v != 0 {
				cells[i] = fmt.Sprintf("%.2f×", s/v)
			}
		}
		g := gs[m]
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", m.spec().label, strings.Join(cells, " | "), g.text, g.verdict(res, m))
	}
}

// logCostGoal is the project's bound on the connection log's cost: proxy CPU
// per connection with every connection logged, over that with the log off.
const logCostGoal = 0.05

// writeLogCost writes what logging every connection costs splicer, from
// the connection-rate runs with the log off and all in the same rounds;
// nothing when either is missing.
func writeLogCost(w io.Writer, res *results) {
	rateOff, ok1 := res.median(targetSplicer, connRate)
	rateAll, ok2 := res.median(targetSplicer, connRateLogAll)
	cpuOff, ok3 := res.median(targetSplicer, connCPUPer1000)
	cpuAll, ok4 := res.median(targetSplicer, connCPUPer1000LogAll)
	if !ok1 || !ok2 || !ok3 || !ok4 || rateOff == 0 || cpuOff == 0 {
		return
	}
	cost := cpuAll/cpuOff - 1
	verdict := "met"
	if cost >= logCostGoal {
		verdict = "missed"
	}
	fmt.Fprintf(w, "\nConnection log, every connection logged to a file vs off (splicer, same rounds): "+
		"%.0f vs %.0f conn/s (%+.1f%%); proxy CPU per connection %.1f vs %.1f µs (%+.1f%%); "+
		"goal under %.0f%% of proxy CPU per connection: %s.\n",
		rateAll, rateOff, 100*(rateAll/rateOff-1), cpuAll*1000, cpuOff*1000, 100*cost, 100*logCostGoal, verdict)
}

// verdict is "met" or "missed", "n/a" when a needed median is missing, and
// "" for a metric without a goal.
func (g goal) verdict(res *results, m metric) string {
	if g.check == nil {
		return ""
	}
	met, ok := g.check(func(t string) (float64, bool) { return res.median(t, m) })
	switch {
	case !ok:
		return "n/a"
	case met:
		return "met"
	default:
		return "missed"
	}
}

// writeNotes lists skipped and failed targets, caps, remarks and the
// capacity check.
func writeNotes(w io.Writer, res *results) {
	var notes []string
	for _, t := range targetNames() {
		if why, ok := res.skipped[t]; ok {
			notes = append(notes, fmt.Sprintf("%s skipped: %s", t, why))
		}
		for _, s := range allSuites() {
			if why, ok := res.failed[startKey{t, s}]; ok {
				notes = append(notes, fmt.Sprintf("%s failed to start with %s routes: %s", t, s, firstLine(why)))
			}
		}
	}
	notes = append(notes, res.notes...)
	for _, t := range []string{targetSplicer, targetHAProxy} {
		with, ok1 := res.median(t, connRatePP2)
		without, ok2 := res.median(t, connRate)
		if ok1 && ok2 && without > 0 {
			notes = append(notes, fmt.Sprintf("%s with a PROXY v2 header to the backend: %.0f%% of its connection rate without", t, 100*with/without))
		}
	}
	if res.capacity != "" {
		notes = append(notes, res.capacity)
	}
	if res.anyRoundFailed() {
		notes = append(notes, "* some rounds failed; the median is of the others (see per-round values)")
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

// writeRounds writes every row's per-round values, in run order, as a
// compact code block: the spread between rounds is the noise.
func writeRounds(w io.Writer, cols []string, rows []metric, res *results) {
	fmt.Fprintln(w, "\nPer-round values (in round order; x = failed):")
	fmt.Fprintln(w, "\n```")
	for _, m := range rows {
		var parts []string
		for _, c := range cols {
			if r := res.rounds(c, m); r != "" {
				parts = append(parts, c+" "+r)
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "%s: %s\n", m.spec().label, strings.Join(parts, " | "))
		}
	}
	fmt.Fprintln(w, "```")
}
