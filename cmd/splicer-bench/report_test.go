package main

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   float64
		ok     bool
	}{
		{"empty", nil, 0, false},
		{"one", []float64{3}, 3, true},
		{"odd count, unsorted", []float64{9, 1, 5}, 5, true},
		{"even count takes the mean of the middle two", []float64{4, 1, 3, 10}, 3.5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := median(tt.values)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("median(%v) = %v, %v; want %v, %v", tt.values, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestMetricSpecsComplete(t *testing.T) {
	for m := range metricCount {
		if s := m.spec(); s.label == "" || s.format == nil {
			t.Errorf("metric %d has no label or format", m)
		}
	}
}

// sampleResults is a three-round run: splicer's connection rate failed in
// one round, nginx would not start with TCP routes but ran the UDP test,
// splicer would not start with UDP routes, and haproxy lacks a value and
// has no UDP.
func sampleResults() *results {
	res := newResults()
	rounds := []map[string]map[metric]float64{
		{
			targetDirect:  {iperf1Gbps: 40, connRate: 9000, udpReqRate: 50000},
			targetSplicer: {iperf1Gbps: 31, connRate: 12000, idleFDs: 2, idleRSS: 1.5},
			targetHAProxy: {iperf1Gbps: 15, connRate: 9500, idleFDs: 2, idleRSS: 3.4},
			targetNginx:   {udpReqRate: 30000},
		},
		{
			targetDirect:  {iperf1Gbps: 38, connRate: 9100, udpReqRate: 52000},
			targetSplicer: {iperf1Gbps: 33, idleFDs: 2, idleRSS: 1.6},
			targetHAProxy: {iperf1Gbps: 16, connRate: 9900, idleFDs: 2, idleRSS: 3.3},
			targetNginx:   {udpReqRate: 31000},
		},
		{
			targetDirect:  {iperf1Gbps: 42, connRate: 8800, udpReqRate: 51000},
			targetSplicer: {iperf1Gbps: 32, connRate: 11000, idleFDs: 2, idleRSS: 1.7},
			targetHAProxy: {iperf1Gbps: 14, connRate: 9700, idleFDs: 2, idleRSS: 3.5},
			targetNginx:   {udpReqRate: 29000},
		},
	}
	for i, round := range rounds {
		for target, values := range round {
			res.record(target, values)
		}
		if i == 1 {
			res.fail(targetSplicer, []metric{connRate})
		}
		res.fail(targetSplicer, []metric{udpReqRate, udpReqCPUPer100k})
	}
	res.failed[startKey{targetNginx, suiteTCP}] = "nginx (exited: exit status 1): exited before listening\n  output tail: ..."
	res.failed[startKey{targetSplicer, suiteUDP}] = "splicer (exited: exit status 1): udp frontends refused"
	res.fail(targetNginx, []metric{iperf1Gbps})
	res.skipped[targetIOCopy] = "not wanted"
	return res
}

func TestCell(t *testing.T) {
	res := sampleResults()
	tests := []struct {
		target string
		m      metric
		want   string
	}{
		{targetDirect, iperf1Gbps, "40.0"},
		{targetSplicer, connRate, "11500*"}, // median of the two good rounds
		{targetHAProxy, idleRSS, "3.40"},
		{targetDirect, idleRSS, "-"}, // never measured
		{targetNginx, iperf1Gbps, "failed"},
		{targetNginx, connRate, "failed"}, // no samples, but the target failed
		{targetIOCopy, connRate, "-"},
		{targetNginx, udpReqRate, "30000"}, // its TCP failure is not UDP's
		{targetSplicer, udpReqRate, "failed"},
		{targetSplicer, udpQueryRate, "failed"}, // no samples, but the target failed with UDP routes
		{targetSplicer, idleFDs, "2.00"},        // its UDP failure is not TCP's
		{targetHAProxy, udpReqRate, "-"},        // no UDP
		{targetDirect, udpReqCPUPer100k, "-"},   // proxy-only
	}
	for _, tt := range tests {
		if got := res.cell(tt.target, tt.m); got != tt.want {
			t.Errorf("cell(%s, %s) = %q, want %q", tt.target, tt.m.spec().label, got, tt.want)
		}
	}
	if got, want := res.rounds(targetSplicer, connRate), "12000 x 11000"; got != want {
		t.Errorf("rounds = %q, want %q", got, want)
	}
}

func TestFailSkipsProxyOnlyMetricsForDirect(t *testing.T) {
	res := newResults()
	res.fail(targetDirect, []metric{idleHeld, idleRSS, idleFDs, idleKernel})
	if got := res.cell(targetDirect, idleRSS); got != "-" {
		t.Errorf("direct idle RSS cell = %q, want -", got)
	}
	if got := res.cell(targetDirect, idleHeld); got != "failed" {
		t.Errorf("direct idle held cell = %q, want failed", got)
	}
}

func TestWriteReport(t *testing.T) {
	var b strings.Builder
	writeReport(&b, []string{targetDirect, targetSplicer, targetHAProxy, targetNginx}, rowsOf(allSuites()), sampleResults())
	out := b.String()
	wantLines := []string{
		"| metric (median of rounds) | direct | splicer | haproxy | nginx |",
		"|---|---:|---:|---:|---:|",
		"| iperf3 1 stream (Gbit/s) | 40.0 | 32.0 | 15.0 | failed |",
		"| connection rate, 32 clients (conn/s) | 9000 | 11500* | 9700 | failed |",
		"| proxy fds per idle connection | - | 2.00 | 2.00 | failed |",
		"| metric | splicer/direct | splicer/haproxy | splicer/nginx | goal | verdict |",
		// 32 >= 0.75*40 and 32 >= 1.5*15.
		"| iperf3 1 stream (Gbit/s) | 0.80× | 2.13× | - | ≥ 0.75× direct and ≥ 1.5× haproxy | met |",
		// nginx has no median, so the goal cannot be judged.
		"| connection rate, 32 clients (conn/s) | 1.28× | 1.19× | - | ≥ 1.2× the best of haproxy and nginx | n/a |",
		"| proxy RSS per idle connection (KiB) | - | 0.47× | - | ≤ 2 KiB | met |",
		"| proxy fds per idle connection | - | 1.00× | - | exactly 2 | met |",
		"| iperf3 8 streams (Gbit/s) | - | - | - |  |  |",
		"- iocopy skipped: not wanted",
		"| UDP request rate, 16 sockets (datagrams/s) | 51000 | failed | - | 30000 |",
		"| UDP request rate, 16 sockets (datagrams/s) | - | - | - |  |  |",
		"- nginx failed to start with tcp routes: nginx (exited: exit status 1): exited before listening",
		"- splicer failed to start with udp routes: splicer (exited: exit status 1): udp frontends refused",
		"- * some rounds failed; the median is of the others (see per-round values)",
		"connection rate, 32 clients (conn/s): direct 9000 9100 8800 | splicer 12000 x 11000 | haproxy 9500 9900 9700",
		"iperf3 1 stream (Gbit/s): direct 40.0 38.0 42.0 | splicer 31.0 33.0 32.0 | haproxy 15.0 16.0 14.0 | nginx x",
		"UDP request rate, 16 sockets (datagrams/s): direct 50000 52000 51000 | splicer x x x | nginx 30000 31000 29000",
	}
	for _, line := range wantLines {
		if !strings.Contains(out, "\n"+line+"\n") && !strings.HasPrefix(out, line+"\n") {
			t.Errorf("report lacks line %q; report:\n%s", line, out)
		}
	}
}

func TestWriteReportRowsOfSuite(t *testing.T) {
	var b strings.Builder
	writeReport(&b, []string{targetDirect, targetNginx}, rowsOf([]suite{suiteUDP}), sampleResults())
	out := b.String()
	for _, m := range []metric{udpReqRate, udpReqP99, udpQueryLoss} {
		if !strings.Contains(out, "| "+m.spec().label+" |") {
			t.Errorf("UDP-only report lacks row %q", m.spec().label)
		}
	}
	for _, m := range []metric{iperf1Gbps, connRate, idleFDs} {
		if strings.Contains(out, m.spec().label) {
			t.Errorf("UDP-only report has TCP row %q", m.spec().label)
		}
	}
}

func TestGoalVerdicts(t *testing.T) {
	tests := []struct {
		name   string
		m      metric
		values map[string]float64
		want   string
	}{
		{"iperf met", iperf1Gbps, map[string]float64{targetSplicer: 30, targetDirect: 40, targetHAProxy: 20}, "met"},
		{"iperf below direct goal", iperf1Gbps, map[string]float64{targetSplicer: 29, targetDirect: 40, targetHAProxy: 10}, "missed"},
		{"iperf below haproxy goal", iperf1Gbps, map[string]float64{targetSplicer: 35, targetDirect: 40, targetHAProxy: 24}, "missed"},
		{"conn rate beats the best", connRate, map[string]float64{targetSplicer: 120, targetHAProxy: 100, targetNginx: 90}, "met"},
		{"conn rate beats only the worst", connRate, map[string]float64{targetSplicer: 119, targetHAProxy: 100, targetNginx: 80}, "missed"},
		{"conn CPU below both", connCPUPer1000, map[string]float64{targetSplicer: 0.1, targetHAProxy: 0.2, targetNginx: 0.3}, "met"},
		{"conn CPU equal to one", connCPUPer1000, map[string]float64{targetSplicer: 0.2, targetHAProxy: 0.2, targetNginx: 0.3}, "missed"},
		{"req rate", reqRate, map[string]float64{targetSplicer: 111, targetHAProxy: 100, targetNginx: 100}, "met"},
		{"fds off by a hundredth", idleFDs, map[string]float64{targetSplicer: 2.01}, "missed"},
		{"RSS over 2 KiB", idleRSS, map[string]float64{targetSplicer: 2.1}, "missed"},
		{"no splicer value", idleRSS, map[string]float64{}, "n/a"},
		{"no goal", reqP99, map[string]float64{targetSplicer: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := newResults()
			for target, v := range tt.values {
				res.record(target, map[metric]float64{tt.m: v})
			}
			if got := goals()[tt.m].verdict(res, tt.m); got != tt.want {
				t.Fatalf("verdict = %q, want %q", got, tt.want)
			}
		})
	}
}

// The connection log's cost is quoted from splicer's two connection-rate
// runs, against the 5% goal, and left out when either is missing.
func TestLogCost(t *testing.T) {
	res := newResults()
	res.record(targetSplicer, map[metric]float64{
		connRate: 6000, connCPUPer1000: 0.130, connRateLogAll: 5880, connCPUPer1000LogAll: 0.1352,
	})
	var b strings.Builder
	writeLogCost(&b, res)
	want := "\nConnection log, every connection logged to a file vs off (splicer, same rounds): 5880 vs 6000 conn/s (-2.0%); " +
		"proxy CPU per connection 135.2 vs 130.0 µs (+4.0%); goal under 5% of proxy CPU per connection: met.\n"
	if b.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", b.String(), want)
	}
	b.Reset()
	delete(res.samples, targetSplicer)
	res.record(targetSplicer, map[metric]float64{connRate: 6000, connCPUPer1000: 0.130})
	if writeLogCost(&b, res); b.Len() != 0 {
		t.Errorf("without the log-all run: %q", b.String())
	}
}
