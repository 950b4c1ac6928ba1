package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Load shapes, fixed by the issue so that runs compare.
const (
	connRateClients = 32
	reqRespConns    = 16
)

// measurement is what one test measured on one instance.
type measurement struct {
	values map[metric]float64
	note   string // anything the reader should know, such as errors seen
}

// suite is a family of tests that share routes: a proxy is started with
// the routes of one suite at a time. Its value is also the network name of
// those routes (for net.Listen and /proc/net).
type suite string

// The suites, in the order a run takes them.
const (
	suiteTCP suite = "tcp"
	suiteUDP suite = "udp"
	// suiteApp routes to real servers, Redis and PostgreSQL, driven by
	// their own benchmark clients.
	suiteApp suite = "app"
	// suiteHealth routes to healthBackends listeners, each health-checked.
	suiteHealth suite = "health"
)

// allSuites lists the suites in run order.
func allSuites() []suite { return []suite{suiteTCP, suiteUDP, suiteApp, suiteHealth} }

// network is the network of the suite's routes: "udp" or "tcp".
func (s suite) network() string {
	if s == suiteUDP {
		return "udp"
	}
	return "tcp"
}

// test is one side-by-side test. Each run gets a fresh instance, so that no
// test inherits another's heap, pipes or TIME_WAIT sockets in the proxy.
type test struct {
	name    string
	suite   suite
	metrics []metric // the rows it fills; all are marked failed when it fails
	run     func(ctx context.Context, r *runner, t *target, in *instance) (measurement, error)
	// proxyV2 runs the test only on targets that send PROXY v2 headers;
	// only, when set, is the one target the test runs on; logAll starts
	// it with every connection logged.
	proxyV2 bool
	only    string
	logAll  bool
}

// servedBy reports whether the test runs on t. Direct does not run a test
// whose every row measures the proxy: it would measure nothing.
func (tst test) servedBy(t *target) bool {
	if t.command == nil && !slices.ContainsFunc(tst.metrics, func(m metric) bool { return !m.spec().proxyOnly }) {
		return false
	}
	return t.serves(tst.suite) && (!tst.proxyV2 || t.sendsProxyV2) && (tst.only == "" || tst.only == t.name)
}

// allTests lists the tests in the order each round runs them.
func allTests() []test {
	return []test{
		{name: "iperf3 1 stream", suite: suiteTCP, metrics: []metric{iperf1Gbps, iperf1Cores, iperf1CPUPerGbit}, run: iperfTest(1, iperf1Gbps, iperf1Cores, iperf1CPUPerGbit)},
		{name: "iperf3 8 streams", suite: suiteTCP, metrics: []metric{iperf8Gbps, iperf8Cores, iperf8CPUPerGbit}, run: iperfTest(8, iperf8Gbps, iperf8Cores, iperf8CPUPerGbit)},
		{name: "connection rate", suite: suiteTCP, metrics: []metric{connRate, connCPUPer1000}, run: connRateTest(connRate, connCPUPer1000)},
		// The connection log's cost: the same load on splicer with every
		// connection logged to a file, in the same rounds as the run
		// above with it off.
		{name: "connection rate, log all", suite: suiteTCP, metrics: []metric{connRateLogAll, connCPUPer1000LogAll},
			run: connRateTest(connRateLogAll, connCPUPer1000LogAll), only: targetSplicer, logAll: true},
		{name: "connection rate, PROXY v2", suite: suiteTCP, metrics: []metric{connRatePP2, connCPUPP2}, run: connRatePP2Test, proxyV2: true},
		{name: "request/response", suite: suiteTCP, metrics: []metric{reqRate, reqP50, reqP99, reqCPUPer100k}, run: reqRespTest},
		{name: "idle connections", suite: suiteTCP, metrics: []metric{idleHeld, idleRSS, idleFDs, idleKernel}, run: idleTest},
		{name: "UDP request/response", suite: suiteUDP, metrics: []metric{udpReqRate, udpReqP50, udpReqP99, udpReqLoss, udpReqCPUPer100k}, run: udpReqRespTest},
		{name: "UDP new-flow queries", suite: suiteUDP, metrics: []metric{udpQueryRate, udpQueryLoss}, run: udpQueryTest},
		{name: "paced requests, 16 connections", suite: suiteTCP, metrics: []metric{growthCPU16}, run: pacedTest(16, growthCPU16)},
		{name: "paced requests, 256 connections", suite: suiteTCP, metrics: []metric{growthCPU256}, run: pacedTest(256, growthCPU256)},
		{name: "paced requests, 4096 connections", suite: suiteTCP, metrics: []metric{growthCPU4096}, run: pacedTest(4096, growthCPU4096)},
		{name: "idle connections, 1000", suite: suiteTCP, metrics: []metric{idle1kRSS, idle1kKernel}, run: idle1kTest},
		{name: "redis-benchmark pipelined", suite: suiteApp, metrics: []metric{redisSetRate, redisGetRate, redisCPU}, run: redisTest},
		{name: "pgbench select-only", suite: suiteApp, metrics: []metric{pgTPS, pgCPU}, run: pgbenchTest},
		{name: "health checks", suite: suiteHealth, metrics: []metric{healthCores, healthCPUPerCheck}, run: healthTest},
	}
}

// testsOf returns the tests of the given suites, in run order.
func testsOf(suites []suite) []test {
	var ts []test
	for _, t := range allTests() {
		if slices.Contains(suites, t.suite) {
			ts = append(ts, t)
		}
	}
	return ts
}

// sampleProxy samples the instance's proxy process tree; ok is false for
// direct, which has no proxy to charge.
func sampleProxy(in *instance) (u usage, ok bool, err error) {
	if in.proc == nil {
		return usage{}, false, nil
	}
	u, err = sampleTree(in.proc.pid())
	return u, err == nil, err
}

// proxyCPU runs f and returns the CPU time the proxy spent meanwhile; ok is
// false for direct.
func proxyCPU(in *instance, f func() error) (cpu time.Duration, ok bool, err error) {
	before, ok, err := sampleProxy(in)
	if err != nil {
		return 0, false, err
	}
	if err := f(); err != nil {
		return 0, false, err
	}
	after, _, err := sampleProxy(in)
	if err != nil {
		return 0, false, err
	}
	return after.sub(before).cpu, ok, nil
}

// iperfTest measures throughput with the given number of streams, and the
// proxy's CPU use both as cores kept busy and per Gbit moved.
func iperfTest(streams int, gbps, cores, cpuPerGbit metric) func(context.Context, *runner, *target, *instance) (measurement, error) {
	return func(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
		var res iperfResult
		start := time.Now()
		cpu, charged, err := proxyCPU(in, func() error {
			var err error
			res, err = runIperf(ctx, r.tools.iperf3, in.iperfAddr, streams, r.opts.duration)
			return err
		})
		elapsed := time.Since(start)
		if err != nil {
			// A failed test can leave iperf3 -s waiting mid-test and busy
			// for every later client; a fresh one keeps the failure here.
			if rerr := r.restartIperf(ctx); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return measurement{}, err
		}
		m := measurement{values: map[metric]float64{gbps: res.bitsPerSecond / 1e9}}
		if charged && res.bytes > 0 {
			m.values[cores] = cpu.Seconds() / elapsed.Seconds()
			m.values[cpuPerGbit] = cpu.Seconds() / res.gbits()
		}
		return m, nil
	}
}

// connRateTest measures new connections per second, each echoing
// messageSize bytes before it closes, into the rate and CPU rows given.
func connRateTest(rate, cpuPer1000 metric) func(context.Context, *runner, *target, *instance) (measurement, error) {
	return func(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
		return connRateOn(ctx, r, in, in.echoAddr, rate, cpuPer1000)
	}
}

// connRatePP2Test is connRateTest on the route where the proxy writes a
// PROXY v2 header to the backend first, which reads it: in the same run,
// so the two rows compare. It runs only on the targets that send v2
// headers (test.proxyV2): not direct, nor nginx (v1 only), nor the io.Copy
// proxy, whose cells read "-".
func connRatePP2Test(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	if in.echoProxyAddr == "" {
		return measurement{}, errors.New("the target has no PROXY v2 route")
	}
	return connRateOn(ctx, r, in, in.echoProxyAddr, connRatePP2, connCPUPP2)
}

// connRateOn measures the connection rate through addr into the rate
// and cpu rows.
func connRateOn(ctx context.Context, r *runner, in *instance, addr string, rate, cpuPer1000 metric) (measurement, error) {
	var res loadResult
	cpu, charged, err := proxyCPU(in, func() error {
		res = connectionRate(ctx, addr, connRateClients, r.opts.duration)
		if res.ops == 0 {
			return fmt.Errorf("no connection completed: %w", res.err)
		}
		return nil
	})
	if err != nil {
		return measurement{}, err
	}
	m := measurement{values: map[metric]float64{rate: res.rate()}}
	if charged {
		m.values[cpuPer1000] = cpu.Seconds() / (float64(res.ops) / 1000)
	}
	if res.errors > 0 {
		m.note = fmt.Sprintf("%d of %d connections failed, first: %v", res.errors, res.ops+res.errors, res.err)
	}
	return m, nil
}

// reqRespTest measures request rate and latency on persistent connections.
// Any failed request fails the test: a connection that dies mid-test would
// silently lower the rate.
func reqRespTest(ctx context.Context, r *runner, _ *target, in *instance) (measurement, error) {
	var res loadResult
	cpu, charged, err := proxyCPU(in, func() error {
		var err error
		res, err = requestResponse(ctx, in.echoAddr, reqRespConns, r.opts.duration)
		if err == nil && res.errors > 0 {
			err = fmt.Errorf("%d of %d connections failed: %w", res.errors, reqRespConns, res.err)
		}
		return err
	})
	if err != nil {
		return measurement{}, err
	}
	if res.ops == 0 {
		return measurement{}, errors.New("no request completed")
	}
	m := measurement{values: map[metric]float64{
		reqRate: res.rate(),
		reqP50:  micros(res.hist.percentile(50)),
		reqP99:  micros(res.hist.percentile(99)),
	}}
	if charged {
		m.values[reqCPUPer100k] = cpu.Seconds() / (float64(res.ops) / 100_000)
	}
	return m, nil
}

// micros converts d to microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// idleTest holds r.opts.idle connections (or the target's cap) open.
func idleTest(ctx context.Context, r *runner, t *target, in *instance) (measurement, error) {
	n := r.opts.idle
	if t.maxIdle > 0 {
		n = min(n, t.maxIdle)
	}
	return holdAndMeasure(ctx, in, n)
}

// holdAndMeasure opens n idle connections through in and measures what each
// costs: proxy RSS and fds, and kernel slab memory for the whole path
// (client, proxy and echo-server sockets alike, so direct is the baseline).
func holdAndMeasure(ctx context.Context, in *instance, n int) (measurement, error) {
	before, charged, err := sampleProxy(in)
	if err != nil {
		return measurement{}, err
	}
	slabBefore, err := kernelSlab()
	if err != nil {
		return measurement{}, err
	}
	set := holdIdle(ctx, in.echoAddr, n)
	defer set.close()
	after, _, err := sampleProxy(in)
	if err != nil {
		return measurement{}, err
	}
	slabAfter, err := kernelSlab()
	if err != nil {
		return measurement{}, err
	}
	if set.held == 0 {
		return measurement{}, fmt.Errorf("no idle connection held: %w", set.err)
	}
	held := float64(set.held)
	m := measurement{values: map[metric]float64{
		idleHeld:   held,
		idleKernel: float64(slabAfter-slabBefore) / held / 1024,
	}}
	if charged {
		d := after.sub(before)
		m.values[idleRSS] = float64(d.rss) / held / 1024
		m.values[idleFDs] = float64(d.fds) / held
	}
	if set.errors > 0 {
		m.note = fmt.Sprintf("held %d of %d, first failure: %v", set.held, n, set.err)
	}
	return m, nil
}
