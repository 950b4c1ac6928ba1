package main

import (
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

// fixed formats with d decimals.
func fixed(d int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', d, 64) }
}

// sig3 formats with three significant digits, for CPU costs that span
// orders of magnitude between targets.
func sig3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
