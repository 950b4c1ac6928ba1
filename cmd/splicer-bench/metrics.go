package main

import (
	"fmt"
	"slices"
	"strconv"
)

// metric is one row of the report.
type metric int

// The rows, in report order.
const (
	iperf1Gbps metric = iota
	iperf1Cores
	iperf1CPUPerGbit
	iperf8Gbps
	iperf8Cores
	iperf8CPUPerGbit
	connRate
	connCPUPer1000
	connRatePP2
	connCPUPP2
	connRateLogAll
	connCPUPer1000LogAll
	reqRate
	reqP50
	reqP99
	reqCPUPer100k
	idleHeld
	idleRSS
	idleFDs
	idleKernel
	udpReqRate
	udpReqP50
	udpReqP99
	udpReqLoss
	udpReqCPUPer100k
	udpQueryRate
	udpQueryLoss
	growthCPU16
	growthCPU256
	growthCPU4096
	idle1kRSS
	idle1kKernel
	redisSetRate
	redisGetRate
	redisCPU
	pgTPS
	pgCPU
	healthCores
	healthCPUPerCheck
	metricCount // the number of rows; not a metric
)

// metricSpec says how a row reads.
type metricSpec struct {
	label  string
	format func(float64) string
	// proxyOnly rows measure the proxy process, so direct has no value.
	proxyOnly bool
	// suite is the family of the test that fills the row.
	suite suite
}

// spec returns the row's label, with its unit, and number format.
func (m metric) spec() metricSpec { return metricSpecs()[m] }

// metricSpecs lists every row's spec, indexed by metric.
func metricSpecs() [metricCount]metricSpec {
	return [metricCount]metricSpec{
		iperf1Gbps:       {"iperf3 1 stream (Gbit/s)", fixed(1), false, suiteTCP},
		iperf1Cores:      {"proxy CPU during iperf3 1 stream (cores)", fixed(2), true, suiteTCP},
		iperf1CPUPerGbit: {"proxy CPU per Gbit, 1 stream (CPU-s)", sig3, true, suiteTCP},
		iperf8Gbps:       {"iperf3 8 streams (Gbit/s)", fixed(1), false, suiteTCP},
		iperf8Cores:      {"proxy CPU during iperf3 8 streams (cores)", fixed(2), true, suiteTCP},
		iperf8CPUPerGbit: {"proxy CPU per Gbit, 8 streams (CPU-s)", sig3, true, suiteTCP},
		connRate:         {"connection rate, 32 clients (conn/s)", fixed(0), false, suiteTCP},
		connCPUPer1000:   {"proxy CPU per 1000 connections (CPU-s)", sig3, true, suiteTCP},
		// splicer only: the same load with every connection logged.
		connRateLogAll:       {"connection rate, connection log all (conn/s)", fixed(0), true, suiteTCP},
		connCPUPer1000LogAll: {"proxy CPU per 1000 connections, connection log all (CPU-s)", sig3, true, suiteTCP},
		connRatePP2:          {"connection rate, PROXY v2 header to the backend (conn/s)", fixed(0), true, suiteTCP},
		connCPUPP2:           {"proxy CPU per 1000 connections, PROXY v2 header (CPU-s)", sig3, true, suiteTCP},
		reqRate:              {"request rate, 16 connections (req/s)", fixed(0), false, suiteTCP},
		reqP50:               {"request latency p50 (µs)", fixed(1), false, suiteTCP},
		reqP99:               {"request latency p99 (µs)", fixed(1), false, suiteTCP},
		reqCPUPer100k:        {"proxy CPU per 100k requests (CPU-s)", sig3, true, suiteTCP},
		idleHeld:             {"idle connections held", fixed(0), false, suiteTCP},
		idleRSS:              {"proxy RSS per idle connection (KiB)", fixed(2), true, suiteTCP},
		idleFDs:              {"proxy fds per idle connection", fixed(2), true, suiteTCP},
		idleKernel:           {"kernel Slab per idle connection, whole path (KiB)", fixed(2), false, suiteTCP},
		udpReqRate:           {"UDP request rate, 16 sockets (datagrams/s)", fixed(0), false, suiteUDP},
		udpReqP50:            {"UDP request latency p50 (µs)", fixed(1), false, suiteUDP},
		udpReqP99:            {"UDP request latency p99 (µs)", fixed(1), false, suiteUDP},
		udpReqLoss:           {"UDP request loss (%)", sig3, false, suiteUDP},
		udpReqCPUPer100k:     {"proxy CPU per 100k UDP requests (CPU-s)", sig3, true, suiteUDP},
		udpQueryRate:         {"UDP new-flow queries, 16 clients (queries/s)", fixed(0), false, suiteUDP},
		udpQueryLoss:         {"UDP new-flow query loss (%)", sig3, false, suiteUDP},
		growthCPU16:          {fmt.Sprintf("proxy CPU per request, 16 connections, %d req/s offered (µs)", growthRate), sig3, true, suiteTCP},
		growthCPU256:         {fmt.Sprintf("proxy CPU per request, 256 connections, %d req/s offered (µs)", growthRate), sig3, true, suiteTCP},
		growthCPU4096:        {fmt.Sprintf("proxy CPU per request, 4096 connections, %d req/s offered (µs)", growthRate), sig3, true, suiteTCP},
		idle1kRSS:            {"proxy RSS per idle connection, 1000 held (KiB)", fixed(2), true, suiteTCP},
		idle1kKernel:         {"kernel Slab per idle connection, 1000 held, whole path (KiB)", fixed(2), false, suiteTCP},
		redisSetRate:         {fmt.Sprintf("redis-benchmark SET, %d clients, pipeline %d (req/s)", redisClients, redisPipeline), fixed(0), false, suiteApp},
		redisGetRate:         {fmt.Sprintf("redis-benchmark GET, %d clients, pipeline %d (req/s)", redisClients, redisPipeline), fixed(0), false, suiteApp},
		redisCPU:             {"proxy CPU per redis request, SET and GET (µs)", sig3, true, suiteApp},
		pgTPS:                {fmt.Sprintf("pgbench select-only, %d clients (tx/s)", pgClients), fixed(0), false, suiteApp},
		pgCPU:                {"proxy CPU per pgbench transaction (µs)", sig3, true, suiteApp},
		healthCores:          {fmt.Sprintf("proxy CPU checking %d backends every %v (cores)", healthBackends, healthInterval), sig3, true, suiteHealth},
		healthCPUPerCheck:    {"proxy CPU per TCP health check (µs)", sig3, true, suiteHealth},
	}
}

// rowsOf returns the metrics filled by the suites, in report order.
func rowsOf(suites []suite) []metric {
	var rows []metric
	for m := range metricCount {
		if slices.Contains(suites, m.spec().suite) {
			rows = append(rows, m)
		}
	}
	return rows
}

// rowsOfTests returns the metrics the tests fill, in report order.
func rowsOfTests(tests []test) []metric {
	filled := map[metric]bool{}
	for _, t := range tests {
		for _, m := range t.metrics {
			filled[m] = true
		}
	}
	var rows []metric
	for m := range metricCount {
		if filled[m] {
			rows = append(rows, m)
		}
	}
	return rows
}

// fixed formats with d decimals.
func fixed(d int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', d, 64) }
}

// sig3 formats with three significant digits, for CPU costs that span
// orders of magnitude between targets.
func sig3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// metricKey is a row's stable name in the results file, and which way is
// better.
type metricKey struct {
	key         string
	lowerBetter bool
}

// metricKeys lists every row's key, indexed by metric.
func metricKeys() [metricCount]metricKey {
	return [metricCount]metricKey{
		iperf1Gbps:        {"iperf1_gbps", false},
		iperf1Cores:       {"iperf1_cores", true},
		iperf1CPUPerGbit:  {"iperf1_cpu_per_gbit", true},
		iperf8Gbps:        {"iperf8_gbps", false},
		iperf8Cores:       {"iperf8_cores", true},
		iperf8CPUPerGbit:  {"iperf8_cpu_per_gbit", true},
		connRate:          {"conn_rate", false},
		connCPUPer1000:    {"conn_cpu_per_1000", true},
		connRatePP2:       {"conn_rate_pp2", false},
		connCPUPP2:        {"conn_cpu_pp2", true},
		reqRate:           {"req_rate", false},
		reqP50:            {"req_p50_us", true},
		reqP99:            {"req_p99_us", true},
		reqCPUPer100k:     {"req_cpu_per_100k", true},
		idleHeld:          {"idle_held", false},
		idleRSS:           {"idle_rss_kib", true},
		idleFDs:           {"idle_fds", true},
		idleKernel:        {"idle_kernel_kib", true},
		udpReqRate:        {"udp_req_rate", false},
		udpReqP50:         {"udp_req_p50_us", true},
		udpReqP99:         {"udp_req_p99_us", true},
		udpReqLoss:        {"udp_req_loss_pct", true},
		udpReqCPUPer100k:  {"udp_req_cpu_per_100k", true},
		udpQueryRate:      {"udp_query_rate", false},
		udpQueryLoss:      {"udp_query_loss_pct", true},
		growthCPU16:       {"growth_cpu_us_16", true},
		growthCPU256:      {"growth_cpu_us_256", true},
		growthCPU4096:     {"growth_cpu_us_4096", true},
		idle1kRSS:         {"idle1k_rss_kib", true},
		idle1kKernel:      {"idle1k_kernel_kib", true},
		redisSetRate:      {"redis_set_rate", false},
		redisGetRate:      {"redis_get_rate", false},
		redisCPU:          {"redis_cpu_us", true},
		pgTPS:             {"pgbench_tps", false},
		pgCPU:             {"pgbench_cpu_us", true},
		healthCores:       {"health_cores", true},
		healthCPUPerCheck: {"health_cpu_us_per_check", true},
	}
}

// key is the row's stable name in the results file.
func (m metric) key() string { return metricKeys()[m].key }

// lowerBetter reports whether a smaller value of the row is better.
func (m metric) lowerBetter() bool { return metricKeys()[m].lowerBetter }
