package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// errNotApplicable is returned by a test that cannot run on a target (a
// connection count beyond its fd budget): its cells stay empty, with a
// note, rather than marked failed.
var errNotApplicable = errors.New("not applicable")

// runner runs the tests round by round. It owns the backend servers and the
// temporary directory; close stops and removes them.
type runner struct {
	tools   *tools
	opts    options
	tmp     string
	log     io.Writer // progress and failures, as they happen
	echo    *process  // nil, as are the others, when no test needs it
	echoPP2 *process  // the echo server that reads a PROXY header first
	iperf   *process
	udpEcho *process
	redis   *process
	// postgres runs as the "postgres" account when the harness is root.
	postgres *process
	sink     *process // the health test's listeners
	back     backends
	apps     appTools
	// unavailable holds the tests whose servers could not be found or
	// started, with the reason; they are skipped.
	unavailable map[string]string
	// dirs are directories outside tmp (PostgreSQL's, which its account
	// must own) that close removes.
	dirs []string
}

// newRunner creates the temporary directory and starts the backends the
// selected suites need.
func newRunner(ctx context.Context, tl *tools, opts options, log io.Writer) (*runner, error) {
	tmp, err := os.MkdirTemp("", "splicer-bench-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	r := &runner{tools: tl, opts: opts, tmp: tmp, log: log, unavailable: map[string]string{}}
	if err := r.startBackends(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// startBackends starts the echo servers (plain, and reading a PROXY header
// first) and iperf3 for the TCP suite, the UDP echo server for the UDP
// suite.
func (r *runner) startBackends(ctx context.Context) error {
	var err error
	if slices.Contains(r.opts.suites, suiteTCP) {
		if r.echo, r.back.echo, err = r.startServer(ctx, "echo server", suiteTCP, "echo"); err != nil {
			return err
		}
		if r.echoPP2, r.back.echoProxy, err = r.startServer(ctx, "PROXY echo server", suiteTCP, "echo", "-proxy"); err != nil {
			return err
		}
		if err := r.startIperf(ctx); err != nil {
			return err
		}
	}
	if slices.Contains(r.opts.suites, suiteUDP) {
		if r.udpEcho, r.back.udpEcho, err = r.startServer(ctx, "UDP echo server", suiteUDP, "udpecho"); err != nil {
			return err
		}
	}
	if slices.Contains(r.opts.suites, suiteApp) {
		r.startApps(ctx)
	}
	if slices.Contains(r.opts.suites, suiteHealth) {
		return r.startSink(ctx)
	}
	return nil
}

// startApps starts Redis and PostgreSQL for the tests selected that need
// them; a server that is missing or fails to start marks its test
// unavailable rather than failing the run.
func (r *runner) startApps(ctx context.Context) {
	r.apps = findAppTools()
	for name, why := range r.apps.unavailable {
		r.unavailable[name] = why
	}
	starts := []struct {
		test  string
		start func(context.Context) error
	}{{testRedis, r.startRedis}, {testPgbench, r.startPostgres}}
	for _, s := range starts {
		if _, gone := r.unavailable[s.test]; gone || !r.selected(s.test) {
			continue
		}
		if err := s.start(ctx); err != nil {
			r.unavailable[s.test] = "its server failed to start: " + err.Error()
		}
	}
}

// runnable returns the tests the run takes: those -run selects, less the
// unavailable ones, which are noted in res with the reason.
func (r *runner) runnable(tests []test, res *results) []test {
	var ts []test
	for _, t := range tests {
		if !r.selected(t.name) {
			continue
		}
		if why, gone := r.unavailable[t.name]; gone {
			note := fmt.Sprintf("%s skipped: %s", t.name, why)
			fmt.Fprintln(r.log, note)
			res.notes = append(res.notes, note)
			continue
		}
		ts = append(ts, t)
	}
	return ts
}

// selected reports whether the test named is among those the run takes.
func (r *runner) selected(name string) bool {
	return r.opts.run == nil || r.opts.run.MatchString(name)
}

// startServer starts a server of this binary's hidden subcommand, with
// args after its -listen, on a fresh loopback port of suite s's network and returns it with its
// address. It runs in its own process so that the idle test's backend ends
// count against its fd limit, not the harness's, and its CPU against no
// one's.
func (r *runner) startServer(ctx context.Context, name string, s suite, subcommand string, args ...string) (*process, string, error) {
	ports, err := freePorts(s.network(), 1)
	if err != nil {
		return nil, "", err
	}
	port := ports[0]
	p, err := startProcess(name, append([]string{r.tools.self, subcommand, "-listen", loopback(port)}, args...), nil)
	if err != nil {
		return nil, "", err
	}
	if err := p.waitListening(ctx, startTimeout, s.network(), port); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, loopback(port), nil
}

// startIperf starts iperf3 -s on a fresh loopback port.
func (r *runner) startIperf(ctx context.Context) error {
	ports, err := freePorts(string(suiteTCP), 1)
	if err != nil {
		return err
	}
	port := ports[0]
	argv := []string{r.tools.iperf3, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port)}
	p, err := startProcess("iperf3 server", argv, nil)
	if err != nil {
		return err
	}
	if err := p.waitListening(ctx, startTimeout, string(suiteTCP), port); err != nil {
		p.stop()
		return err
	}
	r.iperf, r.back.iperf = p, loopback(port)
	return nil
}

// restartIperf replaces the iperf3 server with a fresh one.
func (r *runner) restartIperf(ctx context.Context) error {
	r.iperf.stop()
	r.iperf = nil
	return r.startIperf(ctx)
}

// close stops the backends and removes the temporary directory.
func (r *runner) close() {
	for _, p := range []*process{r.iperf, r.echo, r.echoPP2, r.udpEcho, r.redis, r.postgres, r.sink} {
		if p != nil {
			p.stop()
		}
	}
	for _, d := range r.dirs {
		os.RemoveAll(d)
	}
	os.RemoveAll(r.tmp)
}

// run runs every test on every target that serves its suite for
// opts.rounds rounds. Within a round the targets take turns in an order
// rotated from test to test and round to round, so that slow drift of the
// machine spreads over all columns instead of favouring whichever runs
// first.
func (r *runner) run(ctx context.Context, tests []test, targets []*target, res *results) {
	for round := range r.opts.rounds {
		for i, tst := range tests {
			ts := slices.DeleteFunc(slices.Clone(targets), func(t *target) bool { return !tst.servedBy(t) })
			for j := range ts {
				if ctx.Err() != nil {
					return
				}
				t := ts[(j+round+i)%len(ts)]
				r.runOne(ctx, fmt.Sprintf("[round %d/%d] %s, %s:", round+1, r.opts.rounds, tst.name, t.name), tst, t, res)
			}
		}
	}
}

// runOne runs a test on a fresh instance of t and records the outcome. A
// target that fails to start once with a suite's routes is marked failed
// for that suite and not started with them again.
func (r *runner) runOne(ctx context.Context, prefix string, tst test, t *target, res *results) {
	key := startKey{t.name, tst.suite}
	if _, broken := res.failed[key]; broken {
		res.fail(t.name, tst.metrics)
		return
	}
	in, err := t.start(ctx, r.tmp, r.back, tst.suite, tst.logAll)
	if ctx.Err() != nil {
		if err == nil {
			in.stop()
		}
		return // interrupted
	}
	if err != nil {
		fmt.Fprintf(r.log, "%s failed to start: %v\n", prefix, err)
		res.failed[key] = err.Error()
		res.fail(t.name, tst.metrics)
		return
	}
	m, err := tst.run(ctx, r, t, in)
	if errors.Is(err, errNotApplicable) {
		in.stop()
		note := fmt.Sprintf("%s on %s: no value, %v", tst.name, t.name, err)
		if !slices.Contains(res.notes, note) {
			res.notes = append(res.notes, note)
			fmt.Fprintln(r.log, prefix, err)
		}
		return
	}
	if err != nil && in.proc != nil && in.proc.exited() {
		err = in.proc.failure(err) // the proxy died: its output says why
	}
	in.stop()
	if ctx.Err() != nil {
		return // interrupted: the test did not fail, it was cut short
	}
	if err != nil {
		fmt.Fprintf(r.log, "%s failed: %v\n", prefix, err)
		res.fail(t.name, tst.metrics)
		return
	}
	res.record(t.name, m.values)
	var vs []string
	for _, mt := range tst.metrics {
		if v, ok := m.values[mt]; ok {
			vs = append(vs, fmt.Sprintf("%s %s", mt.spec().label, mt.spec().format(v)))
		}
	}
	line := strings.Join(vs, "; ")
	if m.note != "" {
		res.notes = append(res.notes, fmt.Sprintf("%s %s", prefix, m.note))
		line += " (" + m.note + ")"
	}
	fmt.Fprintln(r.log, prefix, line)
}

// capacity opens n idle connections through a fresh instance of t (the
// goal is 9000 through splicer within a 20000-fd limit) and describes the
// outcome in one line.
func (r *runner) capacity(ctx context.Context, t *target, n, fds int) string {
	what := fmt.Sprintf("capacity check, %d idle connections through %s", n, t.name)
	in, err := t.start(ctx, r.tmp, r.back, suiteTCP, false)
	if err != nil {
		return fmt.Sprintf("%s: failed to start: %s", what, firstLine(err.Error()))
	}
	defer in.stop()
	m, err := holdAndMeasure(ctx, in, n)
	if err != nil {
		return fmt.Sprintf("%s: failed: %v", what, err)
	}
	v := m.values
	out := fmt.Sprintf("%s (fd limit %d): %.0f held, each echoed one byte; %.2f fds and %.2f KiB RSS per connection",
		what, fds, v[idleHeld], v[idleFDs], v[idleRSS])
	if m.note != "" {
		out += " (" + m.note + ")"
	}
	return out
}
